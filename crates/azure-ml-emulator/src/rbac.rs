//! Azure RBAC action patterns, as in role definitions: `*` matches any run of characters,
//! comparison ignores ASCII case. Pure.

/// Whether `pattern` (e.g. `Microsoft.MachineLearningServices/workspaces/computes/*`)
/// grants `action` (e.g. `Microsoft.MachineLearningServices/workspaces/computes/start/action`).
pub fn matches(pattern: &str, action: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let a = action.to_ascii_lowercase();
    glob(p.as_bytes(), a.as_bytes())
}

/// Whether any of `patterns` grants `action`.
pub fn allowed(patterns: &[String], action: &str) -> bool {
    patterns.iter().any(|p| matches(p, action))
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with backtracking to the last `*`.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = "Microsoft.MachineLearningServices/workspaces/computes/start/action";
    const READ: &str = "Microsoft.MachineLearningServices/workspaces/computes/read";

    #[test]
    fn star_grants_everything() {
        assert!(matches("*", START));
        assert!(matches("*", READ));
    }

    #[test]
    fn computes_star() {
        let p = "Microsoft.MachineLearningServices/workspaces/computes/*";
        assert!(matches(p, START));
        assert!(matches(p, READ));
        assert!(!matches(
            p,
            "Microsoft.MachineLearningServices/workspaces/read"
        ));
    }

    #[test]
    fn exact_and_case() {
        assert!(matches(
            "microsoft.machinelearningservices/workspaces/computes/read",
            READ
        ));
        assert!(!matches(READ, START));
        assert!(matches(START, START));
    }

    #[test]
    fn inner_star() {
        assert!(matches("Microsoft.MachineLearningServices/*/read", READ));
        assert!(matches("*/read", READ));
        assert!(!matches("*/write", READ));
        assert!(matches(
            "Microsoft.MachineLearningServices/workspaces/computes/*/action",
            START
        ));
    }

    #[test]
    fn any_of() {
        let ps = vec![READ.to_owned()];
        assert!(allowed(&ps, READ));
        assert!(!allowed(&ps, START));
        assert!(!allowed(&[], READ));
    }
}

//! `text_enum!`: an enum whose values have one spelling each (in the config, the audit
//! log, logs, metric labels or on the wire), with the spelling written once beside its
//! variant instead of in two hand-written `match`es that can drift apart.

/// Declares an enum and, from one `Variant = "spelling"` list:
///
/// - `as_str(self) -> &'static str`, the spelling;
/// - `parse(&str) -> Option<Self>`, exact (case-sensitive);
/// - `ALL`, every value in declaration order;
/// - `PartialEq<&str>` (equal to its spelling);
/// - `Display` (the spelling) and `FromStr`, whose error names what was expected
///   (`unknown cloud "mars", expected public, china or usgov`); `what` names the kind of
///   value in that message.
///
/// Attributes (docs, derives, serde) pass through to the enum and its variants. The enum
/// must be `Copy`.
macro_rules! text_enum {
    (
        what = $what:literal;
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The one spelling of this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value spelled exactly `s`, if any.
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl ::std::cmp::PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s).ok_or_else(|| {
                    $crate::engine::text_enum::unknown($what, s, &[$($text),+])
                })
            }
        }
    };
}
pub(crate) use text_enum;

/// The `FromStr` error of a `text_enum!`: `unknown WHAT "s", expected a, b or c`.
pub fn unknown(what: &str, s: &str, spellings: &[&str]) -> String {
    let expected = match spellings.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    format!("unknown {what} {s:?}, expected {expected}")
}

#[cfg(test)]
mod tests {
    text_enum! {
        what = "colour";
        /// A test enum.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Colour {
            /// Documented.
            Red = "red",
            DarkBlue = "dark_blue",
        }
    }

    #[test]
    fn every_spelling_round_trips_and_others_are_named() {
        for c in Colour::ALL {
            assert_eq!(Colour::parse(c.as_str()), Some(*c));
            assert_eq!(c.to_string().parse::<Colour>(), Ok(*c));
        }
        assert_eq!(Colour::DarkBlue.to_string(), "dark_blue");
        assert_eq!(Colour::parse("Red"), None);
        assert_eq!(
            "green".parse::<Colour>(),
            Err("unknown colour \"green\", expected red or dark_blue".to_owned())
        );
    }
}

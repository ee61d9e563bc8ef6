"""The Kubernetes manifests keep what the operations guide promises (issue 13, items 13-14):
one replica, and a NetworkPolicy that lets only the scraper reach the daemon's port."""

import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"


def load(name):
    return yaml.safe_load((K8S / name).read_text())


def test_one_replica_recreated():
    d = load("deployment.yaml")
    assert d["spec"]["replicas"] == 1, "two daemons would act twice until leader election exists"
    assert d["spec"]["strategy"]["type"] == "Recreate"


def test_network_policy_selects_the_daemon_pod():
    pod_labels = load("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    np = load("networkpolicy.yaml")
    assert np["kind"] == "NetworkPolicy"
    for k, v in np["spec"]["podSelector"]["matchLabels"].items():
        assert pod_labels.get(k) == v
    assert sorted(np["spec"]["policyTypes"]) == ["Egress", "Ingress"]


def test_only_the_scraper_reaches_the_port():
    container_port = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]["ports"][0][
        "containerPort"
    ]
    rules = load("networkpolicy.yaml")["spec"]["ingress"]
    assert len(rules) == 1
    (rule,) = rules
    assert [p["port"] for p in rule["ports"]] == [container_port]
    (peer,) = rule["from"]
    # Both selectors in one peer: pods with that label in that namespace, not either.
    assert peer["namespaceSelector"]["matchLabels"]
    assert peer["podSelector"]["matchLabels"]
    assert "ipBlock" not in peer


def test_egress_is_dns_and_https_only():
    rules = load("networkpolicy.yaml")["spec"]["egress"]
    ports = sorted({(p["port"], p["protocol"]) for r in rules for p in r["ports"]})
    assert ports == [(53, "TCP"), (53, "UDP"), (443, "TCP")]

"""The Dockerfile checker passes the real Dockerfile and catches each kind of mistake."""

from pathlib import Path

import pytest

from check_dockerfile import check, release_command, stages

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
CARGO = (ROOT / "Cargo.toml").read_text()


def test_the_real_dockerfile_passes():
    assert check(DOCKERFILE, MAKEFILE, CARGO) == []


def test_release_command_comes_from_the_makefile():
    assert release_command(MAKEFILE) == "cargo build --release --locked"


def test_two_stages_with_digests():
    sts = stages(DOCKERFILE)
    assert len(sts) == 2
    assert all("@sha256:" in s.image for s in sts)


def mutate(old: str, new: str) -> list[str]:
    assert old in DOCKERFILE, old
    return check(DOCKERFILE.replace(old, new, 1), MAKEFILE, CARGO)


@pytest.mark.parametrize(
    "old,new,expect",
    [
        ("USER 65532:65532", "USER root", "final USER is root"),
        ("USER 65532:65532", "USER nonroot", "not numeric"),
        ("USER 65532:65532", "", "has no USER"),
        ("HEALTHCHECK", "#HEALTHCHECK", "no HEALTHCHECK"),
        ('CMD ["/usr/local/bin/lightsout", "healthcheck"]', "CMD wget -q localhost:9464/healthz", "not exec form"),
        ("cargo build --release --locked", "cargo build --release", "not the Makefile's"),
        ('RUN ["/usr/local/bin/lightsout", "--version"]', "", "smoke step"),
        ("@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f", ":latest", "not pinned"),
        ("rust:1.95-bookworm", "rust:1.80-bookworm", "older than Cargo.toml's rust-version"),
        ("--from=build /out/usr/local/bin", "--from=builder /out/usr/local/bin", "names no earlier stage"),
        ('VOLUME ["/var/lib/lightsout"]', "", "VOLUME"),
        ("org.opencontainers.image.title", "org.example.title", "label org.opencontainers.image.title"),
        ("COPY crates ./crates\n", "", "does not COPY crates/"),
    ],
)
def test_each_mistake_is_caught(old, new, expect):
    problems = mutate(old, new)
    assert any(expect in p for p in problems), problems

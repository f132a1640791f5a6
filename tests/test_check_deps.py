"""scripts/check_deps.py: the decision rules on real-shaped PyPI and OSV documents, the CLI, and one live run."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from packaging.version import Version

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_deps.py"
_spec = importlib.util.spec_from_file_location("check_deps", SCRIPT)
assert _spec and _spec.loader
check_deps = importlib.util.module_from_spec(_spec)
sys.modules["check_deps"] = check_deps  # dataclasses look their module up while the class is made
_spec.loader.exec_module(check_deps)


def _file(filename: str, *, yanked: bool = False, reason: str | None = None) -> dict:
    """One file of a release, as PyPI's project JSON serves it (releases.<version>[] and urls[])."""
    return {
        "comment_text": "",
        "digests": {"blake2b_256": "0" * 64, "md5": "0" * 32, "sha256": "0" * 64},
        "downloads": -1,
        "filename": filename,
        "has_sig": False,
        "md5_digest": "0" * 32,
        "packagetype": "bdist_wheel",
        "python_version": "py3",
        "requires_python": ">=3.9",
        "size": 4662,
        "upload_time": "2025-01-01T00:00:00",
        "upload_time_iso_8601": "2025-01-01T00:00:00.000000Z",
        "url": f"https://files.pythonhosted.org/packages/00/00/{filename}",
        "yanked": yanked,
        "yanked_reason": reason,
    }


def _project(name: str, latest: str, versions: list[str], vulnerabilities: list[dict]) -> dict:
    """A project JSON document (GET /pypi/<name>/json) with the keys and shapes PyPI serves."""
    releases = {version: [_file(f"{name}-{version}-py3-none-any.whl")] for version in versions}
    return {
        "info": {"name": name, "version": latest, "yanked": False, "yanked_reason": None, "requires_python": ">=3.9"},
        "last_serial": 31590094,
        "releases": releases,
        "urls": releases[latest],
        "vulnerabilities": vulnerabilities,
    }


# ecdsa's project JSON as PyPI served it on 2026-12-01: one CVE, reported under two ids, with no fix.
ECDSA_MINERVA = [
    {
        "aliases": ["CVE-2024-23342", "GHSA-wj6h-64fc-37mp"],
        "details": "python-ecdsa has been found to be subject to a Minerva timing attack on the P-256 curve.",
        "fixed_in": [],
        "id": "PYSEC-2026-1325",
        "link": "https://osv.dev/vulnerability/PYSEC-2026-1325",
        "source": "osv",
        "summary": None,
        "withdrawn": None,
    },
    {
        "aliases": ["CVE-2024-23342", "PYSEC-2026-1325"],
        "details": "python-ecdsa has been found to be subject to a Minerva timing attack on the P-256 curve.",
        "fixed_in": [],
        "id": "GHSA-wj6h-64fc-37mp",
        "link": "https://osv.dev/vulnerability/GHSA-wj6h-64fc-37mp",
        "source": "osv",
        "summary": None,
        "withdrawn": None,
    },
]
ECDSA = _project("ecdsa", "0.19.2", ["0.18.0", "0.19.0", "0.19.1", "0.19.2"], ECDSA_MINERVA)

# The examples of PyPI's JSON API documentation: a live Django advisory fixed in three series, and a withdrawn one.
DJANGO_PYSEC_2021_9 = {
    "aliases": ["CVE-2021-3281"],
    "details": "In Django 2.2 before 2.2.18, 3.0 before 3.0.12, and 3.1 before 3.1.6, the django.utils.archive.extract "
    "method allows directory traversal via an archive with absolute paths or relative paths with dot segments.",
    "summary": "A shorter summary of the vulnerability",
    "fixed_in": ["2.2.18", "3.0.12", "3.1.6"],
    "id": "PYSEC-2021-9",
    "link": "https://osv.dev/vulnerability/PYSEC-2021-9",
    "source": "osv",
    "withdrawn": None,
}
WITHDRAWN = {
    "aliases": ["CVE-2022-XXXXX"],
    "details": "A long description.",
    "summary": "A shorter summary.",
    "fixed_in": ["1.2.3"],
    "id": "PYSEC-2022-XXX",
    "link": "https://osv.dev/vulnerability/PYSEC-2022-XXX",
    "source": "osv",
    "withdrawn": "2022-06-28T16:39:06Z",
}
# The release the listing is for (3.0.2) is taken as the latest, so PyPI's rule (listed = affects it) holds.
DJANGO = _project("Django", "3.0.2", ["2.2.17", "2.2.18", "3.0", "3.0.1", "3.0.2"], [DJANGO_PYSEC_2021_9])

REQUESTS = _project("requests", "2.34.2", ["2.19.0", "2.33.0", "2.34.2"], [])


@pytest.mark.parametrize(
    ("installed", "fixed_in", "ruled_out"),
    [
        ("1.2.0", ["1.2.3"], False),
        ("1.2.3", ["1.2.3"], True),
        ("1.2.4", ["1.2.3"], True),
        ("1.2.3rc1", ["1.2.3"], False),  # a pre-release comes before its release
        ("1.3.0", ["1.2.3"], False),  # another series: the fix there says nothing about 1.3
        ("3.0.5", ["2.2.18", "3.0.12", "3.1.6"], False),  # above 2.2.18, yet 3.0 before 3.0.12 is affected
        ("3.0.12", ["2.2.18", "3.0.12", "3.1.6"], True),
        ("3.1.6", ["2.2.18", "3.0.12", "3.1.6"], True),
        ("2.2.18.post1", ["2.2.18", "3.0.12", "3.1.6"], True),
        ("3", ["3.0.0"], True),  # 3 == 3.0.0 in PEP 440
        ("1.2.5", [], False),  # no fix at all
        ("1.2.5", ["not a version"], False),
    ],
)
def test_fixed_in_rules_out_only_a_fix_in_the_same_series(installed: str, fixed_in: list[str], ruled_out: bool):
    assert check_deps.ruled_out_by_fix(Version(installed), fixed_in) is ruled_out


def test_the_latest_release_with_a_listed_advisory_is_affected_and_aliases_merge():
    result = check_deps.assess_pypi("ecdsa", "0.19.2", ECDSA)
    assert result.status == check_deps.AFFECTED
    assert result.latest == "0.19.2"
    [advisory] = result.advisories  # PYSEC and GHSA records of one CVE are one advisory
    assert advisory.id == "PYSEC-2026-1325"
    assert set(advisory.aliases) == {"CVE-2024-23342", "GHSA-wj6h-64fc-37mp"}
    assert advisory.fixed_in == ()
    assert "Minerva" in advisory.summary


def test_an_older_release_with_an_unfixed_advisory_on_the_latest_is_possibly_affected():
    result = check_deps.assess_pypi("ecdsa", "0.18.0", ECDSA)
    assert result.status == check_deps.POSSIBLY_AFFECTED
    assert [advisory.id for advisory in result.advisories] == ["PYSEC-2026-1325"]


def test_the_latest_release_with_no_listed_advisory_is_ok():
    result = check_deps.assess_pypi("requests", "2.34.2", REQUESTS)
    assert (result.status, result.advisories, result.notes) == (check_deps.OK, [], [])
    assert check_deps.assess_pypi("requests", "2.34.2.0", REQUESTS).status == check_deps.OK  # PEP 440 equality


def test_an_older_release_is_never_reported_clean():
    """The listing covers the latest release only: an advisory fixed in 2.20 would not be in it."""
    result = check_deps.assess_pypi("requests", "2.19.0", REQUESTS)
    assert result.status == check_deps.UNVERIFIABLE
    assert result.latest == "2.34.2"
    assert "older than the latest release 2.34.2" in result.reason


def test_a_newer_release_than_the_latest_is_not_verifiable():
    result = check_deps.assess_pypi("requests", "2.35.0rc1", REQUESTS)
    assert result.status == check_deps.UNVERIFIABLE
    assert "newer than the latest release" in result.reason
    assert result.notes == ["version 2.35.0rc1 is not on PyPI (another index or a local build?)"]


def test_a_local_build_is_judged_as_its_public_version():
    ok = check_deps.assess_pypi("requests", "2.34.2+cpu", REQUESTS)
    assert ok.status == check_deps.OK
    assert ok.notes == ["local build +cpu: judged as 2.34.2 (a local build may carry its own patches)"]
    assert check_deps.assess_pypi("ecdsa", "0.19.2+deb13u1", ECDSA).status == check_deps.AFFECTED
    assert check_deps.assess_pypi("requests", "2.19.0+local", REQUESTS).status == check_deps.UNVERIFIABLE


def test_fixed_in_decides_an_advisory_of_the_latest_release_for_an_older_one():
    assert check_deps.assess_pypi("Django", "3.0.2", DJANGO).status == check_deps.AFFECTED
    older = check_deps.assess_pypi("Django", "3.0.1", DJANGO)
    assert older.status == check_deps.POSSIBLY_AFFECTED
    assert older.advisories[0].fixed_in == ("2.2.18", "3.0.12", "3.1.6")
    fixed_series = check_deps.assess_pypi("Django", "2.2.18", DJANGO)
    assert fixed_series.status == check_deps.UNVERIFIABLE  # not this one, but older ones are invisible
    assert fixed_series.advisories == []
    assert check_deps.assess_pypi("Django", "2.2.17", DJANGO).status == check_deps.POSSIBLY_AFFECTED


def test_withdrawn_advisories_are_ignored():
    project = _project("sampleproject", "1.2.0", ["1.0", "1.2.0"], [WITHDRAWN])
    assert check_deps.pypi_advisories(project) == []
    assert check_deps.assess_pypi("sampleproject", "1.2.0", project).status == check_deps.OK
    live = copy.deepcopy(project)
    live["vulnerabilities"][0]["withdrawn"] = None
    assert check_deps.assess_pypi("sampleproject", "1.2.0", live).status == check_deps.AFFECTED


def test_a_yanked_installed_release_is_noted():
    project = copy.deepcopy(REQUESTS)
    project["releases"]["2.33.0"] = [_file("requests-2.33.0-py3-none-any.whl", yanked=True, reason="broken wheel")]
    result = check_deps.assess_pypi("requests", "2.33.0", project)
    assert result.notes == ["2.33.0 is yanked on PyPI: broken wheel"]


def test_versions_that_are_not_pep440_are_not_verifiable():
    result = check_deps.assess_pypi("requests", "2004d", REQUESTS)
    assert result.status == check_deps.UNVERIFIABLE
    assert "not a PEP 440 version" in result.reason
    assert check_deps.assess_pypi("ecdsa", "2004d", ECDSA).status == check_deps.POSSIBLY_AFFECTED


def test_the_exit_status_puts_advisories_first_and_never_calls_unknown_clean():
    def results(*statuses: str) -> list:
        return [check_deps.Assessment(f"p{i}", "1.0", status, "") for i, status in enumerate(statuses)]

    exit_status = check_deps.exit_status
    assert exit_status(results(check_deps.OK, check_deps.LOCAL)) == check_deps.EXIT_OK
    assert exit_status(results(check_deps.OK, check_deps.POSSIBLY_AFFECTED, check_deps.UNREACHABLE)) == 1
    assert exit_status(results(check_deps.OK, check_deps.UNVERIFIABLE)) == check_deps.EXIT_UNVERIFIED == 3
    assert exit_status(results(check_deps.OK, check_deps.UNREACHABLE)) == check_deps.EXIT_UNVERIFIED
    assert exit_status(results(check_deps.UNREACHABLE, check_deps.LOCAL)) == check_deps.EXIT_UNREACHABLE == 4


# --- an OSV dump: pip's PYSEC-2023-228 as pypa/advisory-database has it (its long `versions` list cut short) ----

PIP_PYSEC_2023_228_YAML = """\
id: PYSEC-2023-228
modified: {modified}
published: 2023-10-25T18:17:00Z
aliases:
- CVE-2023-5752
details: "When installing a package from a Mercurial VCS URL  (ie \\"pip install \\nhg+...\\")
  with pip prior to v23.3, the specified Mercurial revision could\\n be used to inject
  arbitrary configuration options to the \\"hg clone\\" \\ncall (ie \\"--config\\")."
affected:
- package:
    ecosystem: PyPI
    name: pip
    purl: pkg:pypi/pip
  ranges:
  - type: ECOSYSTEM
    events:
    - introduced: "0"
    - fixed: "23.3"
  versions:
  - "23.1"
  - 23.1.1
  - 23.1.2
  - "23.2"
  - 23.2.1
references:
- type: FIX
  url: https://github.com/pypa/pip/pull/12306
"""

# An OSV JSON record (the form of OSV's PyPI all.zip), shaped like setuptools' GHSA-5rjg-fvgr-3xxf; the second
# package, with a last_affected bound, is made up to cover that event.
SETUPTOOLS_OSV_JSON = {
    "schema_version": "1.6.0",
    "id": "GHSA-5rjg-fvgr-3xxf",
    "modified": "2025-05-20T00:00:00Z",
    "published": "2025-05-17T00:00:00Z",
    "aliases": ["CVE-2025-47273"],
    "summary": "setuptools has a path traversal vulnerability in PackageIndex.download",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "setuptools", "purl": "pkg:pypi/setuptools"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "78.1.1"}]}],
        },
        {
            "package": {"ecosystem": "PyPI", "name": "Setuptools_Legacy"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"last_affected": "2.4"}]}],
        },
    ],
}


def _dump(folder: Path, modified: datetime) -> Path:
    (folder / "vulns" / "pip").mkdir(parents=True)
    stamp = modified.isoformat().replace("+00:00", "Z")
    (folder / "vulns" / "pip" / "PYSEC-2023-228.yaml").write_text(PIP_PYSEC_2023_228_YAML.format(modified=stamp))
    (folder / "GHSA-5rjg-fvgr-3xxf.json").write_text(json.dumps(SETUPTOOLS_OSV_JSON))
    (folder / "README.json").write_text("[]")  # not an OSV record: skipped
    return folder


def test_osv_ranges_decide_every_version(tmp_path: Path):
    database = check_deps.load_osv_database(_dump(tmp_path, datetime(2023, 11, 3, tzinfo=UTC)))
    assert sorted(database.by_name) == ["pip", "setuptools", "setuptools-legacy"]
    [pip_record] = database.by_name["pip"]
    hit = check_deps.osv_advisory(pip_record, "pip", Version("23.2.1"))
    assert (hit.id, hit.aliases, hit.fixed_in, hit.source) == (
        "PYSEC-2023-228",
        ("CVE-2023-5752",),
        ("23.3",),
        "osv-db",
    )
    assert check_deps.osv_advisory(pip_record, "pip", Version("23.3")) is None
    assert check_deps.osv_advisory(pip_record, "pip", Version("9.0.1")) is not None  # in the range, not in `versions`
    [record] = database.by_name["setuptools"]
    assert check_deps.osv_advisory(record, "setuptools", Version("65.5.0")).fixed_in == ("78.1.1",)
    assert check_deps.osv_advisory(record, "setuptools", Version("78.1.1")) is None
    assert check_deps.osv_advisory(record, "setuptools-legacy", Version("2.4")) is not None  # last_affected: included
    assert check_deps.osv_advisory(record, "setuptools-legacy", Version("2.4.1")) is None
    assert check_deps.osv_advisory(record, "setuptools-legacy", Version("1.9")) is None
    assert check_deps.osv_advisory({**record, "withdrawn": "2025-06-01T00:00:00Z"}, "setuptools", Version("1")) is None


def test_a_stale_dump_reports_advisories_but_clears_nothing(tmp_path: Path):
    database = check_deps.load_osv_database(_dump(tmp_path, datetime(2023, 11, 3, tzinfo=UTC)))
    assert database.newest == datetime(2025, 5, 20, tzinfo=UTC)
    assert not database.is_fresh(timedelta(days=14), now=datetime(2026, 12, 1, tzinfo=UTC))
    pip_project = _project("pip", "26.3", ["23.2.1", "23.3", "26.3"], [])
    behind = check_deps.assess_pypi("pip", "23.2.1", pip_project)
    assert behind.status == check_deps.UNVERIFIABLE
    found = check_deps.apply_osv(behind, database, fresh=False)
    assert found.status == check_deps.AFFECTED
    assert [(a.id, a.fixed_in) for a in found.advisories] == [("PYSEC-2023-228", ("23.3",))]
    not_found = check_deps.apply_osv(check_deps.assess_pypi("pip", "23.3", pip_project), database, fresh=False)
    assert not_found.status == check_deps.UNVERIFIABLE
    assert not_found.notes == ["the OSV dump lists none, but it is from 2025-05-20: too old to clear it"]


def test_a_fresh_dump_clears_what_it_covers_and_settles_listed_advisories(tmp_path: Path):
    now = datetime.now(UTC)
    database = check_deps.load_osv_database(_dump(tmp_path, now - timedelta(days=1)))
    assert database.is_fresh(timedelta(days=14))
    pip_project = _project("pip", "26.3", ["23.2.1", "23.3", "26.3"], [])
    cleared = check_deps.apply_osv(check_deps.assess_pypi("pip", "23.3", pip_project), database, fresh=True)
    assert cleared.status == check_deps.OK
    assert "lists none for 23.3" in cleared.reason
    # Made up: PyPI lists GHSA-5rjg-fvgr-3xxf, without a fix, for a latest release 80.0; fixed_in cannot clear 79.0,
    # the dump's exact range (fixed in 78.1.1) can.
    listed = {
        "aliases": ["CVE-2025-47273"],
        "details": "A path traversal vulnerability in PackageIndex is present in setuptools.",
        "fixed_in": [],
        "id": "GHSA-5rjg-fvgr-3xxf",
        "link": "https://osv.dev/vulnerability/GHSA-5rjg-fvgr-3xxf",
        "source": "osv",
        "summary": None,
        "withdrawn": None,
    }
    setuptools = _project("setuptools", "80.0", ["79.0", "80.0"], [listed])
    possibly = check_deps.assess_pypi("setuptools", "79.0", setuptools)
    assert possibly.status == check_deps.POSSIBLY_AFFECTED
    assert check_deps.apply_osv(possibly, database, fresh=True).status == check_deps.OK
    assert check_deps.apply_osv(possibly, database, fresh=False).status == check_deps.POSSIBLY_AFFECTED
    # an advisory the dump has no record of stays open
    setuptools["vulnerabilities"].append({**listed, "id": "PYSEC-2099-1", "aliases": []})
    partly = check_deps.apply_osv(check_deps.assess_pypi("setuptools", "79.0", setuptools), database, fresh=True)
    assert partly.status == check_deps.POSSIBLY_AFFECTED
    assert [advisory.id for advisory in partly.advisories] == ["PYSEC-2099-1"]
    assert partly.reason.endswith("settles 1 of them")


# --- the environment and the command line --------------------------------------------------------------------


def _site_packages(folder: Path, *dists: tuple[str, str], local: str | None = None) -> Path:
    """A site-packages folder holding just the .dist-info metadata of `dists` (and of `local`, from a folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, version in [*dists, *([(local, "0.1.0")] if local else [])]:
        info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        if name == local:
            (info / "direct_url.json").write_text(json.dumps({"url": "file:///src", "dir_info": {"editable": True}}))
    return folder


def test_installed_distributions_reads_a_site_packages_folder(tmp_path: Path):
    site = _site_packages(tmp_path / "site", ("requests", "2.19.0"), ("PyYAML", "6.0.1"), local="chatapp")
    assert check_deps.installed_distributions([str(site)]) == [
        ("chatapp", "0.1.0", True),
        ("PyYAML", "6.0.1", False),
        ("requests", "2.19.0", False),
    ]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_an_unreachable_registry_says_what_was_not_checked(tmp_path: Path):
    site = _site_packages(tmp_path / "site", ("requests", "2.19.0"), ("idna", "3.7"), local="chatapp")
    done = _run("--path", str(site), "--pypi-url", "http://127.0.0.1:9/pypi", "--timeout", "5")
    assert done.returncode == check_deps.EXIT_UNREACHABLE, done.stdout + done.stderr
    assert "PyPI could not be reached: nothing was checked (2 distributions unchecked" in done.stderr
    assert "NOT CHECKED: PyPI did not answer (2)" in done.stdout
    assert "OK:" not in done.stdout


def test_live_pypi_never_calls_an_old_release_clean(tmp_path: Path):
    """Against the real registry: requests 2.19.0 (2018) is behind the latest release, so it cannot be clean."""
    site = _site_packages(tmp_path / "site", ("requests", "2.19.0"))
    done = _run("--path", str(site), "--json")
    if done.returncode == check_deps.EXIT_UNREACHABLE:
        pytest.skip(f"PyPI is unreachable from here: {done.stderr.strip()}")
    assert done.returncode in {check_deps.EXIT_ADVISORY, check_deps.EXIT_UNVERIFIED}, done.stdout + done.stderr
    report = json.loads(done.stdout)
    [result] = report["results"]
    assert result["name"] == "requests"
    assert result["status"] in {check_deps.POSSIBLY_AFFECTED, check_deps.UNVERIFIABLE}
    assert Version(result["latest"]) > Version("2.19.0")
    assert report["exit"] == done.returncode

"""Check the installed distributions against the vulnerability data that can be had here (docs/DEPENDENCIES.md).

The source that always answers is PyPI's project JSON (https://pypi.org/pypi/<name>/json). Its `vulnerabilities`
list covers the project's LATEST release only, so it settles a distribution only when the installed version is that
release; for any other version an advisory fixed before the latest release is invisible, and the distribution is
reported as not verifiable (never as clean). An OSV dump on disk (--osv-db: a directory of OSV JSON/YAML files such as
a checkout of pypa/advisory-database, or OSV's PyPI all.zip) adds range-exact answers for every version; it clears a
distribution only when it is fresh (--osv-max-age-days).

Exit status: 0 every distribution checked and clean; 1 an advisory affects (or, from the data, may affect) an installed
version; 2 usage error; 3 no advisory found but some distributions could not be verified; 4 PyPI could not be reached
at all, so nothing was checked.

Run it with the interpreter of the environment to check (scripts/check-deps uses .venv), or name site-packages
folders with --path. Only the standard library and `packaging` (and PyYAML for YAML OSV files) are needed.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

PYPI_URL = "https://pypi.org/pypi"
USER_AGENT = "chatapp-check-deps/1 (+docs/DEPENDENCIES.md)"

EXIT_OK, EXIT_ADVISORY, EXIT_UNVERIFIED, EXIT_UNREACHABLE = 0, 1, 3, 4

# statuses, worst first
AFFECTED = "affected"  # an advisory affects the installed version
POSSIBLY_AFFECTED = "possibly_affected"  # an advisory affects the latest release and the data cannot rule out ours
UNVERIFIABLE = "unverifiable"  # no advisory seen, but the data cannot show that there is none
UNREACHABLE = "unreachable"  # PyPI did not answer for this project
OK = "ok"  # the data covers the installed version and lists no advisory for it
LOCAL = "local"  # installed from a local folder (the project itself): not a registry package
STATUS_ORDER = (AFFECTED, POSSIBLY_AFFECTED, UNVERIFIABLE, UNREACHABLE, OK, LOCAL)


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    fixed_in: tuple[str, ...] = ()
    link: str = ""
    source: str = "pypi"  # "pypi" (project JSON) or "osv-db" (the dump on disk)

    def ids(self) -> set[str]:
        return {self.id, *self.aliases}

    def label(self) -> str:
        aliases = [alias for alias in self.aliases if alias != self.id]
        return f"{self.id} ({', '.join(aliases)})" if aliases else self.id


@dataclass
class Assessment:
    name: str
    installed: str
    status: str
    reason: str
    latest: str | None = None
    advisories: list[Advisory] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_version(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def _series(version: Version) -> tuple[int, int]:
    release = (*version.release, 0)
    return release[0], release[1]


# --- PyPI's project JSON -------------------------------------------------------------------------------------


def pypi_advisories(project: dict[str, Any]) -> list[Advisory]:
    """The live (not withdrawn) advisories of a project JSON document, one per vulnerability (aliases merged)."""
    merged: list[Advisory] = []
    for entry in project.get("vulnerabilities") or []:
        if entry.get("withdrawn"):
            continue
        advisory = Advisory(
            id=str(entry.get("id") or "?"),
            aliases=tuple(str(alias) for alias in entry.get("aliases") or ()),
            summary=" ".join(str(entry.get("summary") or entry.get("details") or "").split())[:160],
            fixed_in=tuple(str(version) for version in entry.get("fixed_in") or ()),
            link=str(entry.get("link") or ""),
        )
        merged = _merge(merged, advisory)
    return merged


def _merge(advisories: list[Advisory], new: Advisory) -> list[Advisory]:
    """Add `new`, folding it into an advisory that shares an id or alias (PYSEC and GHSA records of one CVE)."""
    for index, old in enumerate(advisories):
        if old.ids() & new.ids():
            advisories[index] = Advisory(
                id=old.id,
                aliases=tuple(sorted((old.ids() | new.ids()) - {old.id})),
                summary=old.summary or new.summary,
                fixed_in=tuple(dict.fromkeys((*old.fixed_in, *new.fixed_in))),
                link=old.link or new.link,
                source=old.source if old.source == new.source else f"{old.source}+{new.source}",
            )
            return advisories
    return [*advisories, new]


def ruled_out_by_fix(installed: Version, fixed_in: Iterable[str]) -> bool:
    """True when a listed fix is at or below `installed` in the same major.minor series.

    `fixed_in` loses OSV's "introduced" bounds, so a fix in another series proves nothing about ours (Django's
    fixed_in ["2.2.18", "3.0.12", "3.1.6"] leaves 3.0.5 affected although 3.0.5 > 2.2.18): only a same-series fix
    at or below the installed version counts.
    """
    for text in fixed_in:
        fixed = parse_version(text)
        if fixed is not None and fixed <= installed and _series(fixed) == _series(installed):
            return True
    return False


def _release_notes(project: dict[str, Any], installed: Version) -> list[str]:
    """Yanked release or a version PyPI does not have, from the (deprecated but served) `releases` map."""
    releases = project.get("releases")
    if not isinstance(releases, dict):
        return []
    public = Version(installed.public)
    files = [files for key, files in releases.items() if parse_version(key) == public]
    if not files:
        return [f"version {public} is not on PyPI (another index or a local build?)"]
    uploads = files[0] or []
    if uploads and all(upload.get("yanked") for upload in uploads):
        reason = next((upload.get("yanked_reason") for upload in uploads if upload.get("yanked_reason")), None)
        return [f"{public} is yanked on PyPI" + (f": {reason}" if reason else "")]
    return []


def assess_pypi(name: str, installed: str, project: dict[str, Any]) -> Assessment:
    """Decide what PyPI's project JSON `project` says about `installed`, a version of distribution `name`."""
    latest_text = str((project.get("info") or {}).get("version") or "") or None
    advisories = pypi_advisories(project)
    version, latest = parse_version(installed), parse_version(latest_text)
    if version is None or latest is None:
        bad = installed if version is None else f"the latest release {latest_text!r}"
        status = POSSIBLY_AFFECTED if advisories else UNVERIFIABLE
        return Assessment(name, installed, status, f"{bad} is not a PEP 440 version", latest_text, advisories)
    notes = _release_notes(project, version)
    public = Version(version.public)
    if version.local:
        notes.append(f"local build +{version.local}: judged as {public} (a local build may carry its own patches)")
    if public == latest:
        if advisories:
            reason = "PyPI lists these advisories for this release"
            return Assessment(name, installed, AFFECTED, reason, latest_text, advisories, notes)
        return Assessment(name, installed, OK, "the latest release; PyPI lists no advisory", latest_text, [], notes)
    open_ones = [advisory for advisory in advisories if not ruled_out_by_fix(version, advisory.fixed_in)]
    where = "older than" if public < latest else "newer than"
    reason = f"{where} the latest release {latest}: PyPI lists advisories for {latest} only"
    if open_ones:
        reason += f"; {len(open_ones)} of them cannot be ruled out for {installed}"
        return Assessment(name, installed, POSSIBLY_AFFECTED, reason, latest_text, open_ones, notes)
    return Assessment(name, installed, UNVERIFIABLE, reason, latest_text, [], notes)


# --- an OSV dump on disk ------------------------------------------------------------------------------------


@dataclass
class OsvDatabase:
    source: str
    by_name: dict[str, list[dict[str, Any]]]
    newest: datetime | None  # the latest `modified` of any record: how fresh the dump is

    def is_fresh(self, max_age: timedelta, now: datetime | None = None) -> bool:
        return self.newest is not None and (now or datetime.now(UTC)) - self.newest <= max_age


def _timestamp(text: Any) -> datetime | None:
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    try:
        stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _osv_documents(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.endswith((".json", ".yaml", ".yml")):
                    yield member, archive.read(member)
        return
    for file in sorted(path.rglob("*")):
        if file.suffix in {".json", ".yaml", ".yml"} and file.is_file() and ".git" not in file.parts:
            yield str(file), file.read_bytes()


def load_osv_database(path: Path) -> OsvDatabase:
    by_name: dict[str, list[dict[str, Any]]] = {}
    newest: datetime | None = None
    for member, raw in _osv_documents(path):
        if member.endswith(".json"):
            document = json.loads(raw)
        else:
            import yaml  # PyYAML: only for YAML dumps such as pypa/advisory-database

            document = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        if not isinstance(document, dict) or "affected" not in document or "id" not in document:
            continue
        modified = _timestamp(document.get("modified"))
        if modified and (newest is None or modified > newest):
            newest = modified
        names = {
            canonicalize_name(str(entry["package"]["name"]))
            for entry in document.get("affected") or []
            if (entry.get("package") or {}).get("ecosystem") == "PyPI" and entry["package"].get("name")
        }
        for name in names:
            by_name.setdefault(name, []).append(document)
    return OsvDatabase(str(path), by_name, newest)


def _range_affects(events: list[dict[str, Any]], version: Version) -> bool:
    """OSV's ECOSYSTEM range rule: sort the events, then introduced switches on, fixed/last_affected switch off."""

    def key(event: dict[str, Any]) -> tuple[Version, int]:
        kind, text = next(iter(event.items()))
        parsed = Version("0") if text == "0" else parse_version(str(text))
        if parsed is None:
            raise InvalidVersion(str(text))
        return parsed, {"introduced": 0, "fixed": 1, "last_affected": 2, "limit": 3}.get(kind, 3)

    affected = False
    for event in sorted((event for event in events if event), key=key):
        kind = next(iter(event))
        bound, _ = key(event)
        if kind == "introduced" and bound <= version:
            affected = True
        elif (kind == "fixed" and bound <= version) or (kind == "last_affected" and bound < version):
            affected = False
    return affected


def osv_advisory(document: dict[str, Any], name: str, installed: Version) -> Advisory | None:
    """The advisory of OSV `document` if it affects `installed` of distribution `name`, else None."""
    if document.get("withdrawn"):
        return None
    hit, fixes = False, []
    for entry in document.get("affected") or []:
        package = entry.get("package") or {}
        if package.get("ecosystem") != "PyPI" or canonicalize_name(str(package.get("name", ""))) != name:
            continue
        if any(parse_version(str(text)) == installed for text in entry.get("versions") or ()):
            hit = True
        for affected_range in entry.get("ranges") or []:
            if affected_range.get("type") not in {"ECOSYSTEM", "SEMVER"}:
                continue  # GIT ranges come with an explicit `versions` list, read above
            events = affected_range.get("events") or []
            try:
                hit = _range_affects(events, installed) or hit
            except InvalidVersion:
                continue
            fixes += [str(event["fixed"]) for event in events if "fixed" in event]
    if not hit:
        return None
    later = sorted(
        {fix for fix in fixes if (parsed := parse_version(fix)) is not None and parsed > installed}, key=Version
    )
    return Advisory(
        id=str(document["id"]),
        aliases=tuple(str(alias) for alias in document.get("aliases") or ()),
        summary=" ".join(str(document.get("summary") or document.get("details") or "").split())[:160],
        fixed_in=tuple(later),
        link=f"https://osv.dev/vulnerability/{document['id']}",
        source="osv-db",
    )


def apply_osv(assessment: Assessment, database: OsvDatabase, fresh: bool) -> Assessment:
    """Add what the dump says about `assessment`'s installed version; a fresh dump can clear a distribution."""
    parsed = parse_version(assessment.installed)
    if parsed is None or assessment.status == LOCAL:
        return assessment
    version = Version(parsed.public)  # a local build is judged as its public version, as on PyPI
    name = canonicalize_name(assessment.name)
    documents = database.by_name.get(name, [])
    found = [hit for doc in documents if (hit := osv_advisory(doc, name, version)) is not None]
    advisories = list(assessment.advisories)
    if fresh and assessment.status == POSSIBLY_AFFECTED:
        # the dump has the exact ranges of the advisories it knows: those it did not find for us do not apply
        known = {str(alias) for doc in documents for alias in [doc["id"], *(doc.get("aliases") or ())]}
        advisories = [advisory for advisory in advisories if not advisory.ids() & known]
    for advisory in found:
        advisories = _merge(advisories, advisory)
    stamp = database.newest.date().isoformat() if database.newest else "undated"
    unsettled = {UNVERIFIABLE, UNREACHABLE, POSSIBLY_AFFECTED}
    if found:
        reason = f"{assessment.reason}; the OSV dump ({stamp}) lists {len(found)} for {assessment.installed}"
        status = AFFECTED
    elif assessment.status == POSSIBLY_AFFECTED and advisories:  # some the dump cannot settle
        if advisories == assessment.advisories:
            return assessment
        settled = len(assessment.advisories) - len(advisories)
        reason = f"{assessment.reason}; the OSV dump ({stamp}) settles {settled} of them"
        status = POSSIBLY_AFFECTED
    elif assessment.status in unsettled and fresh:
        reason = f"{assessment.reason}; the OSV dump ({stamp}) lists none for {assessment.installed}"
        status = OK
    else:
        if assessment.status in unsettled:
            assessment.notes.append(f"the OSV dump lists none, but it is from {stamp}: too old to clear it")
        return assessment
    return Assessment(
        assessment.name, assessment.installed, status, reason, assessment.latest, advisories, assessment.notes
    )


# --- the environment and the network ------------------------------------------------------------------------


def installed_distributions(paths: list[str] | None = None) -> list[tuple[str, str, bool]]:
    """(name, version, installed from a local folder) for each distribution, first on the path winning."""
    seen: dict[str, tuple[str, str, bool]] = {}
    for dist in metadata.distributions(path=paths) if paths else metadata.distributions():
        name = dist.metadata["Name"]
        if not name or canonicalize_name(name) in seen:
            continue
        local = False
        direct_url = dist.read_text("direct_url.json")
        if direct_url:
            try:
                local = "dir_info" in json.loads(direct_url)
            except ValueError:
                local = False
        seen[canonicalize_name(name)] = (name, dist.version, local)
    return sorted(seen.values(), key=lambda item: canonicalize_name(item[0]))


def fetch_project(base_url: str, name: str, timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """(document, None), (None, "not found") on 404, or (None, why) when the registry did not answer."""
    url = f"{base_url.rstrip('/')}/{canonicalize_name(name)}/json"
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": USER_AGENT})  # noqa: S310
    error = ""
    for _attempt in range(2):  # one retry: a big document (litellm's, botocore's) can time out once
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
                return json.load(response), None
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None, "not found"
            error = f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    return None, error


def check(
    distributions: list[tuple[str, str, bool]],
    base_url: str = PYPI_URL,
    timeout: float = 20.0,
    osv: OsvDatabase | None = None,
    osv_fresh: bool = False,
) -> list[Assessment]:
    def one(item: tuple[str, str, bool]) -> Assessment:
        name, version, local = item
        if local:
            return Assessment(name, version, LOCAL, "installed from a local folder: not a registry package")
        document, error = fetch_project(base_url, name, timeout)
        if document is not None:
            result = assess_pypi(name, version, document)
        elif error == "not found":
            result = Assessment(name, version, UNVERIFIABLE, "not found on PyPI: no advisory data")
        else:
            result = Assessment(name, version, UNREACHABLE, f"PyPI did not answer ({error})")
        return apply_osv(result, osv, osv_fresh) if osv else result

    # one request first: when PyPI does not answer it, the others are not tried (each would wait for its timeout)
    first = next((index for index, item in enumerate(distributions) if not item[2]), None)
    if first is None:
        return [one(item) for item in distributions]
    probe = one(distributions[first])
    if probe.status == UNREACHABLE:
        why = f"not tried: PyPI did not answer for {probe.name} ({probe.reason})"
        results = [
            Assessment(name, version, UNREACHABLE, why) if not local else one((name, version, local))
            for name, version, local in distributions
        ]
        results[first] = probe
        return [apply_osv(result, osv, osv_fresh) for result in results] if osv else results
    rest = [item for index, item in enumerate(distributions) if index != first]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, rest))
    return [*results[:first], probe, *results[first:]]


def exit_status(results: list[Assessment]) -> int:
    statuses = {result.status for result in results}
    checked = [result for result in results if result.status != LOCAL]
    if statuses & {AFFECTED, POSSIBLY_AFFECTED}:
        return EXIT_ADVISORY
    if checked and all(result.status == UNREACHABLE for result in checked):
        return EXIT_UNREACHABLE
    if statuses & {UNVERIFIABLE, UNREACHABLE}:
        return EXIT_UNVERIFIED
    return EXIT_OK


# --- the report ---------------------------------------------------------------------------------------------

HEADINGS = {
    AFFECTED: "AFFECTED: an advisory covers the installed version",
    POSSIBLY_AFFECTED: "POSSIBLY AFFECTED: an advisory covers the latest release and the data cannot rule out ours",
    UNVERIFIABLE: "NOT VERIFIABLE: no advisory seen, but the data cannot show there is none",
    UNREACHABLE: "NOT CHECKED: PyPI did not answer",
    LOCAL: "SKIPPED: installed from a local folder",
}


def render(results: list[Assessment], header: str) -> str:
    lines = [header, ""]
    for status in STATUS_ORDER:
        group = [result for result in results if result.status == status]
        if not group:
            continue
        if status == OK:
            lines.append(f"OK: the data covers the installed version and lists no advisory ({len(group)})")
            lines += [f"  {line}" for line in _wrap(", ".join(f"{r.name} {r.installed}" for r in group), 116)]
            lines += [f"  note: {r.name} {r.installed}: {note}" for r in group for note in r.notes]
            lines.append("")
            continue
        lines.append(f"{HEADINGS[status]} ({len(group)})")
        for result in group:
            latest = f" (latest {result.latest})" if result.latest and result.latest != result.installed else ""
            lines.append(f"  {result.name} {result.installed}{latest}: {result.reason}")
            for advisory in result.advisories:
                fix = f"fixed in {', '.join(advisory.fixed_in)}" if advisory.fixed_in else "no fixed release listed"
                lines.append(f"    - {advisory.label()}: {fix} [{advisory.source}] {advisory.link}")
                if advisory.summary:
                    lines.append(f"      {advisory.summary}")
            lines += [f"    note: {note}" for note in result.notes]
        lines.append("")
    counts = {status: sum(result.status == status for result in results) for status in STATUS_ORDER}
    lines.append("result: " + ", ".join(f"{count} {status}" for status, count in counts.items() if count))
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


EXPLAIN = {
    EXIT_OK: "every distribution is covered by the data and none has a known advisory",
    EXIT_ADVISORY: "an installed version has (or may have) a known advisory",
    EXIT_UNVERIFIED: "no known advisory, but the distributions listed above could not be verified",
    EXIT_UNREACHABLE: "PyPI could not be reached: nothing was checked",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", action="append", help="a site-packages folder to read instead of this interpreter's")
    parser.add_argument("--pypi-url", default=PYPI_URL, help=f"base of the project JSON API (default {PYPI_URL})")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per request (default 20)")
    parser.add_argument("--osv-db", type=Path, help="an OSV dump: a folder of OSV JSON/YAML files or OSV's all.zip")
    parser.add_argument(
        "--osv-max-age-days",
        type=float,
        default=14.0,
        help="a dump whose newest record is older than this cannot clear a distribution (default 14)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    distributions = installed_distributions(args.path)
    if not distributions:
        print("check-deps: no installed distributions found", file=sys.stderr)
        return EXIT_UNVERIFIED
    osv = load_osv_database(args.osv_db) if args.osv_db else None
    fresh = bool(osv and osv.is_fresh(timedelta(days=args.osv_max_age_days)))
    results = check(distributions, args.pypi_url, args.timeout, osv, fresh)
    status = exit_status(results)

    where = ", ".join(args.path) if args.path else sys.prefix
    header = f"check-deps: {len(distributions)} distributions in {where}; advisories from {args.pypi_url}/<name>/json"
    if osv:
        stamp = osv.newest.isoformat() if osv.newest else "no dated record"
        header += f" and the OSV dump {osv.source} (newest record {stamp}, {'fresh' if fresh else 'too old to clear'})"
    if args.json:
        print(json.dumps({"exit": status, "source": header, "results": [asdict(r) for r in results]}, indent=1))
    else:
        print(render(results, header))
    message = f"check-deps: exit {status}: {EXPLAIN[status]}"
    if status == EXIT_UNREACHABLE:
        unreached = [result for result in results if result.status == UNREACHABLE]
        message += f" ({len(unreached)} distributions unchecked; first error: {unreached[0].reason})"
    print(message, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Which account a lead belongs to, without asking the lead: by its email's registrable domain,
then by its company's name, fuzzily, with the match and its reason kept.

The registrable domain comes from the Public Suffix List as `tldextract` bundles it (offline: no
list is fetched), so `ada@eu.mail.acme.co.uk` belongs to `acme.co.uk`, and a personal address
(a webmail or free-mail domain) never matches an account by its domain: thousands of leads share
`gmail.com`. The name pass compares names with their legal form stripped (`Acme, Inc.` is
`acme`) using `rapidfuzz`'s token-sort ratio, and declines when two accounts come equally close.

Pure and without I/O, but it loads the suffix list on first use: call it from activities and the
API, not from workflow code.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import tldextract
from rapidfuzz import fuzz, process

# The name pass's bar (0-100): "Acme Corp" against "ACME Corporation" scores 100 once legal
# forms are stripped; "Acme Analytics" against "Acme Robotics" scores under 70.
MIN_NAME_SCORE = 90.0
# Two accounts whose names score within this of each other are a tie: no guess is made.
TIE_MARGIN = 3.0

# Legal forms and their abbreviations, as they end (or start) company names in the markets the
# seed sells to; stripped before names are compared.
LEGAL_FORMS = frozenset(
    {
        "ab", "ag", "as", "asa", "bv", "bvba", "co", "company", "corp", "corporation", "gmbh", "inc",
        "incorporated", "kg", "kk", "limited", "llc", "llp", "lp", "ltd", "nv", "oy", "oyj", "plc",
        "pte", "pty", "sa", "sarl", "sas", "spa", "sl", "srl", "ug",
    }
)  # fmt: skip
_WORDS = re.compile(r"[^\w]+")

# Personal mail providers, beside the scoring config's own `free_mail` list: never an account.
WEBMAIL = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "ymail.com", "aol.com", "icloud.com", "me.com", "mac.com", "proton.me",
        "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "yandex.com",
        "yandex.ru", "mail.ru", "qq.com", "163.com", "126.com", "zoho.com", "fastmail.com",
        "hey.com", "tutanota.com", "orange.fr", "free.fr", "laposte.net", "libero.it", "t-online.de",
    }
)  # fmt: skip


@lru_cache(maxsize=1)
def _extract() -> tldextract.TLDExtract:
    # The bundled snapshot only: no fetch, no cache directory.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def registrable_domain(address: str) -> str | None:
    """The domain an organisation registered, for an email address, a host or a URL
    (`ada@eu.acme.co.uk` -> `acme.co.uk`); None when there is none (`localhost`, an IP)."""
    text = address.strip().casefold()
    host = text.rsplit("@", 1)[-1] if "@" in text else text
    extracted = _extract()(host, include_psl_private_domains=True)
    if not extracted.domain or not extracted.suffix:
        return None
    return f"{extracted.domain}.{extracted.suffix}"


def is_personal_domain(domain: str, free_mail: Iterable[str] = ()) -> bool:
    listed = WEBMAIL | {d.casefold() for d in free_mail}
    return any(domain == d or domain.endswith("." + d) for d in listed)


def normalized_company(name: str) -> str:
    """A company name to compare: accents, case, punctuation and legal forms gone
    (`Société Générale S.A.` -> `societe generale`)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = [w for w in _WORDS.split(ascii_name.casefold().replace(".", "")) if w]
    kept = [w for w in words if w not in LEGAL_FORMS]
    return " ".join(kept or words)


@dataclass(frozen=True)
class KnownAccount:
    """An account as the CRM knows it: its id there, its name and its website domains."""

    account_id: str
    name: str
    domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccountMatch:
    account_id: str
    by: Literal["domain", "name"]
    reason: str  # says what matched, without the lead's address
    score: float  # 100 for a domain; the name's similarity otherwise


def match_account(
    email: str | None,
    company: str | None,
    accounts: Sequence[KnownAccount],
    *,
    free_mail: Iterable[str] = (),
    min_name_score: float = MIN_NAME_SCORE,
) -> AccountMatch | None:
    """The account a lead with `email` and `company` belongs to among `accounts`, or None."""
    domain = registrable_domain(email) if email else None
    if domain and not is_personal_domain(domain, free_mail):
        owners = {a.account_id for a in accounts if domain in {registrable_domain(d) for d in a.domains}}
        if len(owners) == 1:
            return AccountMatch(owners.pop(), "domain", f"email domain {domain}", 100.0)
    if not company or not company.strip():
        return None
    wanted = normalized_company(company)
    names = {a.account_id: normalized_company(a.name) for a in accounts}
    ranked = process.extract(wanted, names, scorer=fuzz.token_sort_ratio, limit=2)
    if not ranked or ranked[0][1] < min_name_score:
        return None
    if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < TIE_MARGIN:
        return None  # two accounts as close as each other: a person decides
    _, score, account_id = ranked[0]
    return AccountMatch(str(account_id), "name", f"company name {wanted!r} ~ {names[account_id]!r}", score)

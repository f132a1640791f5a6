"""Rate limits: the token bucket itself (with a hand-moved clock), then each limit through the real
services on SQLite and PostgreSQL: posts per participant, sign-in attempts per username and per IP,
invite links followed per IP."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from chatapp.app import build_limits
from chatapp.config import Settings
from chatapp.domain.accounts import SignUpForm
from chatapp.domain.errors import DomainError, InvalidCredentials, ValidationError
from chatapp.domain.invites import InviteInvalid
from chatapp.domain.limits import Limits, Rate, RateLimited, RateLimiter, when_to_retry
from chatapp.domain.models import NewSession
from tests.domain.helpers import PASSWORD, sign_up

WRONG = "not the password at all"


class Seconds:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limited(limiter: RateLimiter, key: str = "k") -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        limiter.hit(key, "Slow down.")
    return caught.value


# ---------------------------------------------------------------------------------------------------
# The bucket
# ---------------------------------------------------------------------------------------------------


def test_a_burst_is_allowed_then_the_steady_rate():
    clock = Seconds()
    limiter = RateLimiter(Rate(3, 1.0), clock=clock)
    for _ in range(3):
        limiter.hit("k", "Slow down.")
    refused = limited(limiter)
    assert isinstance(refused, DomainError)
    assert refused.retry_after == pytest.approx(1.0)
    assert refused.message == "Slow down. Try again in 1 second."
    assert limiter.wait_needed("k") == pytest.approx(1.0)

    clock.now += 0.5
    assert limited(limiter).retry_after == pytest.approx(0.5)  # a refused attempt costs nothing
    clock.now += 0.5
    limiter.hit("k", "Slow down.")  # one token back after a second
    limited(limiter)

    clock.now += 100  # a long pause refills the bucket, but never beyond the burst
    assert limiter.wait_needed("k") == 0
    for _ in range(3):
        limiter.hit("k", "Slow down.")
    limited(limiter)


def test_each_key_has_its_own_bucket():
    limiter = RateLimiter(Rate(1, 0.01), clock=Seconds())
    limiter.hit("alice", "Slow down.")
    limited(limiter, "alice")
    limiter.hit("bob", "Slow down.")


def test_the_message_says_when_to_try_again_in_seconds_or_minutes():
    clock = Seconds()
    fifteen_minutes = RateLimiter(Rate.per_window(10, 15 * 60), clock=clock)
    for _ in range(10):
        fifteen_minutes.hit("k", "Too many.")
    refused = limited(fifteen_minutes)
    assert refused.retry_after == pytest.approx(90)  # one attempt comes back every 90 seconds
    assert refused.message == "Slow down. Try again in 2 minutes."
    clock.now += 80
    assert limited(fifteen_minutes).message == "Slow down. Try again in 10 seconds."

    slow = RateLimiter(Rate(2, 0.5), clock=clock)
    slow.hit("k", "x")
    slow.hit("k", "x")
    assert limited(slow).message == "Slow down. Try again in 2 seconds."


@pytest.mark.parametrize(
    ("seconds", "phrase"),
    [
        (0.01, "in 1 second"),
        (1, "in 1 second"),
        (1.2, "in 2 seconds"),
        (59, "in 59 seconds"),
        (60, "in 1 minute"),
        (61, "in 2 minutes"),
        (900, "in 15 minutes"),
    ],
)
def test_when_to_retry_rounds_up(seconds, phrase):
    assert when_to_retry(seconds) == phrase


def test_reset_forgets_a_key():
    limiter = RateLimiter(Rate(2, 0.001), clock=Seconds())
    for key in ("a", "b"):
        limiter.hit(key, "x")
        limiter.hit(key, "x")
    limiter.reset("a")
    limiter.hit("a", "x")
    limiter.hit("a", "x")
    limited(limiter, "a")
    limited(limiter, "b")  # only that key
    limiter.reset("never seen")  # no error


def test_only_the_most_recent_max_keys_are_remembered():
    limiter = RateLimiter(Rate(1, 0.001), clock=Seconds(), max_keys=3)
    for key in ("a", "b", "c"):
        limiter.hit(key, "x")
    limited(limiter, "a")
    limiter.hit("d", "x")  # a fourth key: the least recently used one ("a") is dropped
    limiter.hit("a", "x")  # ...so "a" starts afresh (and now "b" is dropped)
    limited(limiter, "c")
    limited(limiter, "d")
    limiter.hit("b", "x")


async def test_a_burst_of_zero_switches_the_limit_off():
    limiter = RateLimiter(Rate(0, 1.0), clock=Seconds())
    for _ in range(1000):
        limiter.hit("k", "x")
    assert limiter.wait_needed("k") == 0
    off = Limits.off()
    for bucket in (off.posts, off.joins, off.sign_in_user, off.sign_in_ip):
        for _ in range(100):
            await bucket.hit("k", "x")  # never refused


def test_the_defaults_are_twenty_messages_then_one_a_second_and_ten_sign_ins_per_fifteen_minutes():
    limits = build_limits(Settings(_env_file=None))
    assert limits.posts.rate == Rate(20, 1.0)
    assert limits.sign_in_user.rate == limits.sign_in_ip.rate == Rate.per_window(10, 15 * 60)
    assert limits.joins.rate == Rate.per_window(20, 60 * 60)
    off = build_limits(Settings(_env_file=None, message_burst=0, sign_in_limit=0, join_limit=0))
    assert off.posts.rate.burst == off.sign_in_user.rate.burst == off.joins.rate.burst == 0


# ---------------------------------------------------------------------------------------------------
# Through the services
# ---------------------------------------------------------------------------------------------------

TRY_AGAIN = re.compile(r" Try again in \d+ (second|minute)s?\.$")


# One message back every 10 s (not 1 s), so a slow machine cannot refill the bucket during the test.
@pytest.mark.settings(message_burst=3, message_per_second=0.1)
async def test_posting_faster_than_the_rate_is_refused_and_nothing_is_saved(runtime):
    chat, rooms = runtime.services.chat, runtime.services.rooms
    membership = runtime.services.membership
    alice, _ = await sign_up(runtime, "alice", "Alice")
    bob, _ = await sign_up(runtime, "bob", "Bob")
    room = await rooms.create_room(alice, name="Busy")
    other = await rooms.create_room(alice, name="Other")
    await membership.join(bob, room.id)
    for i in range(3):
        await chat.post_message(alice, room.id, f"m{i}")
    with pytest.raises(RateLimited) as refused:
        await chat.post_message(alice, room.id, "one too many")
    assert refused.value.message.startswith("You are sending messages too fast.")
    assert TRY_AGAIN.search(refused.value.message) and 0 < refused.value.retry_after <= 10
    assert [m.body for m in (await chat.list_messages(alice, room.id)).messages] == ["m0", "m1", "m2"]

    await chat.post_message(bob, room.id, "someone else may")  # per participant...
    await chat.post_message(alice, other.id, "elsewhere too")  # ...and per room
    assert [m.body for m in (await chat.list_messages(alice, room.id)).messages][-1] == "someone else may"


@pytest.mark.settings(message_burst=0)
async def test_a_message_burst_of_zero_means_no_post_limit(runtime):
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="R")
    for i in range(30):
        await runtime.services.chat.post_message(alice, room.id, f"m{i}")
    assert len((await runtime.services.chat.list_messages(alice, room.id)).messages) == 30


@pytest.mark.settings(message_burst=2, message_per_second=0.1)
async def test_a_guest_has_a_post_limit_of_their_own(runtime):
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="R", private=True)
    link = await runtime.services.invites.create_invite(alice, room.id)
    gwen = (await runtime.services.invites.accept_as_guest(link.token, "Gwen")).actor
    greg = (await runtime.services.invites.accept_as_guest(link.token, "Greg")).actor
    for _ in range(2):
        await runtime.services.chat.post_message(gwen, room.id, "hi")
    with pytest.raises(RateLimited):
        await runtime.services.chat.post_message(gwen, room.id, "hi")
    await runtime.services.chat.post_message(greg, room.id, "hi")
    await runtime.services.chat.post_message(alice, room.id, "hi")


async def test_ten_sign_in_attempts_per_username_then_the_username_is_limited_from_any_ip(runtime):
    accounts = runtime.services.accounts
    await sign_up(runtime, "alice")
    for i in range(10):
        with pytest.raises(InvalidCredentials):
            await accounts.sign_in(username="alice", password=WRONG, ip=f"10.0.0.{i}")
    for ip, username in (("10.0.1.1", "alice"), ("10.0.1.2", " ALICE "), (None, "alice")):
        with pytest.raises(RateLimited) as refused:  # even with the right password
            await accounts.sign_in(username=username, password=PASSWORD, ip=ip)
        assert refused.value.message == "Too many failed sign-in attempts. Try again in 2 minutes."
    await sign_up(runtime, "bob")
    await accounts.sign_in(username="bob", password=PASSWORD, ip="10.0.1.1")  # other names are not affected


async def test_ten_sign_in_attempts_per_ip_then_the_ip_is_limited_for_any_username(runtime):
    accounts = runtime.services.accounts
    await sign_up(runtime, "alice")
    for i in range(10):
        with pytest.raises(InvalidCredentials):
            await accounts.sign_in(username=f"someone{i}", password=WRONG, ip="203.0.113.7")
    with pytest.raises(RateLimited) as refused:
        await accounts.sign_in(username="alice", password=PASSWORD, ip="203.0.113.7")
    assert TRY_AGAIN.search(refused.value.message)
    session = await accounts.sign_in(username="alice", password=PASSWORD, ip="203.0.113.8")
    assert (await accounts.authenticate(session.token)).username == "alice"


async def test_a_successful_sign_in_clears_the_usernames_count(runtime):
    accounts = runtime.services.accounts
    await sign_up(runtime, "alice")
    for i in range(9):
        with pytest.raises(InvalidCredentials):
            await accounts.sign_in(username="alice", password=WRONG, ip=f"10.0.0.{i}")
    await accounts.sign_in(username="alice", password=PASSWORD, ip="10.0.0.100")
    for i in range(10):  # a fresh count of ten
        with pytest.raises(InvalidCredentials):
            await accounts.sign_in(username="alice", password=WRONG, ip=f"10.0.2.{i}")
    with pytest.raises(RateLimited):
        await accounts.sign_in(username="alice", password=WRONG, ip="10.0.3.1")


@pytest.mark.settings(sign_in_limit=0)
async def test_a_sign_in_limit_of_zero_switches_it_off(runtime):
    await sign_up(runtime, "alice")
    for _ in range(12):
        with pytest.raises(InvalidCredentials):
            await runtime.services.accounts.sign_in(username="alice", password=WRONG, ip="10.0.0.1")


@pytest.mark.settings(join_limit=3)
async def test_invite_links_followed_are_limited_per_ip(runtime):
    invites = runtime.services.invites
    owner, _ = await sign_up(runtime, "olga")
    bob, _ = await sign_up(runtime, "bob")
    room = await runtime.services.rooms.create_room(owner, name="R", private=True)
    link = await invites.create_invite(owner, room.id)
    for i in range(3):
        await invites.accept_as_guest(link.token, f"Guest {i}", ip="198.51.100.1")
    with pytest.raises(RateLimited) as refused:
        await invites.accept_as_guest(link.token, "One too many", ip="198.51.100.1")
    assert refused.value.message == "Too many invite links followed from your network. Try again in 20 minutes."
    with pytest.raises(RateLimited):  # signed-in users following a link count too
        await invites.accept_as_user(bob, link.token, ip="198.51.100.1")
    assert [i.uses for i in await invites.list_invites(owner, room.id)] == [3]
    guests = [p for p in await runtime.services.membership.list_participants(owner, room.id) if p.guest_id]
    assert len(guests) == 3

    # Guessing links counts as well, so the limit also slows down anyone trying tokens.
    for _ in range(3):
        with pytest.raises(InviteInvalid):
            await invites.accept_as_guest("guessed-token", "Mallory", ip="198.51.100.2")
    with pytest.raises(RateLimited):
        await invites.accept_as_guest(link.token, "Mallory", ip="198.51.100.2")

    await invites.accept_as_guest(link.token, "From elsewhere", ip="198.51.100.3")  # another network
    assert await invites.accept_as_user(bob, link.token) == room.id  # no IP known: not limited
    assert [i.uses for i in await invites.list_invites(owner, room.id)] == [5]


@pytest.mark.settings(sign_in_limit=3)
async def test_successful_sign_ins_are_not_counted_against_a_shared_address(runtime):
    for name in ("ann", "ben", "cat", "dan", "eve"):  # five people behind one office address
        await sign_up(runtime, name, name.title())
        await runtime.services.accounts.sign_in(username=name, password=PASSWORD, ip="198.51.100.1")
        await runtime.services.accounts.sign_in(username=name, password=PASSWORD, ip="198.51.100.1")


# ---------------------------------------------------------------------------------------------------
# Concurrent attempts: each one reserves its place before any password is hashed
# ---------------------------------------------------------------------------------------------------


async def test_a_burst_of_simultaneous_wrong_passwords_checks_only_the_limit(runtime):
    """40 wrong passwords at once on one user (limit 10): ten are checked, thirty refused unhashed."""
    await sign_up(runtime, "alice")
    attempts = [
        runtime.services.accounts.sign_in(username="alice", password=f"{WRONG} {i}", ip=f"10.9.0.{i}")
        for i in range(40)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    assert sum(isinstance(o, InvalidCredentials) for o in outcomes) == 10
    assert sum(isinstance(o, RateLimited) for o in outcomes) == 30


async def test_the_right_password_inside_a_burst_past_the_limit_is_refused(runtime):
    """60 simultaneous attempts from one address, the right password at position 46: refused."""
    await sign_up(runtime, "alice")
    attempts = [
        runtime.services.accounts.sign_in(
            username="alice", password=PASSWORD if i == 45 else f"{WRONG} {i}", ip="203.0.113.9"
        )
        for i in range(60)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    assert isinstance(outcomes[45], RateLimited)
    assert not any(isinstance(o, NewSession) for o in outcomes)
    assert sum(isinstance(o, InvalidCredentials) for o in outcomes) == 10


@pytest.mark.settings(sign_in_limit=3)
async def test_simultaneous_right_passwords_from_one_address_are_all_let_in(runtime):
    """Reserving a place must not lock out an office: successful attempts give theirs back."""
    names = ("ann", "ben", "cat", "dan", "eve", "fay")
    for name in names:
        await sign_up(runtime, name, name.title())
    attempts = [
        runtime.services.accounts.sign_in(username=name, password=PASSWORD, ip="198.51.100.1") for name in names[:3]
    ]
    assert all(isinstance(o, NewSession) for o in await asyncio.gather(*attempts))
    for name in names[3:]:
        await runtime.services.accounts.sign_in(username=name, password=PASSWORD, ip="198.51.100.1")


@pytest.mark.settings(join_limit=5)
async def test_simultaneous_invite_links_followed_stop_at_the_limit(runtime):
    owner, _ = await sign_up(runtime, "olga")
    room = await runtime.services.rooms.create_room(owner, name="R", private=True)
    link = await runtime.services.invites.create_invite(owner, room.id)
    joins = [runtime.services.invites.accept_as_guest(link.token, f"Guest {i}", ip="198.51.100.4") for i in range(25)]
    outcomes = await asyncio.gather(*joins, return_exceptions=True)
    assert sum(isinstance(o, RateLimited) for o in outcomes) == 20
    guests = [p for p in await runtime.services.membership.list_participants(owner, room.id) if p.guest_id]
    assert len(guests) == 5


@pytest.mark.settings(message_burst=5, message_per_second=0.1)
async def test_simultaneous_messages_stop_at_the_burst(runtime):
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="R")
    posts = [runtime.services.chat.post_message(alice, room.id, f"m{i}") for i in range(30)]
    outcomes = await asyncio.gather(*posts, return_exceptions=True)
    assert sum(isinstance(o, RateLimited) for o in outcomes) == 25
    assert len((await runtime.services.chat.list_messages(alice, room.id)).messages) == 5


# ---------------------------------------------------------------------------------------------------
# Sign-up
# ---------------------------------------------------------------------------------------------------


def _form(username: str) -> SignUpForm:
    return SignUpForm(username=username, display_name=username.title(), password=PASSWORD)


@pytest.mark.settings(sign_up_limit=3)
async def test_sign_ups_are_limited_per_ip_and_the_limit_is_reserved_before_hashing(runtime):
    accounts = runtime.services.accounts
    await accounts.sign_up(_form("ann"), ip="198.51.100.7")
    with pytest.raises(ValidationError):  # a taken name counts: it tells names apart
        await accounts.sign_up(_form("ann"), ip="198.51.100.7")
    with pytest.raises(ValidationError):  # a form that is wrong on its face does not
        await accounts.sign_up(SignUpForm(username="x", display_name="", password="short"), ip="198.51.100.7")
    attempts = [accounts.sign_up(_form(f"user{i}"), ip="198.51.100.7") for i in range(10)]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    assert sum(isinstance(o, NewSession) for o in outcomes) == 1
    refused = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(refused) == 9 and refused[0].message.startswith("Too many sign-ups from your network.")
    await accounts.sign_up(_form("bob"), ip="198.51.100.8")  # another address
    await accounts.sign_up(_form("cli"))  # no address (the command line): not limited


async def test_a_flood_of_sign_ups_for_a_taken_name_does_not_slow_down_sign_in(runtime):
    """Taken names are refused before argon2 runs, so a flood queues no hashing in front of real
    sign-ins (it did: 64 at once slowed a sign-in from 76 ms to 2.2 s). Compared with sign-ins
    timed just before, in the same run: a machine's speed cancels out. The fastest of three on each
    side, since other load on the machine only ever adds time."""
    accounts = runtime.services.accounts
    await accounts.sign_up(_form("ann"))

    async def sign_in_seconds() -> float:
        started = time.perf_counter()
        await accounts.sign_in(username="ann", password=PASSWORD)
        return time.perf_counter() - started

    alone = min([await sign_in_seconds() for _ in range(3)])
    during_flood = []
    for _ in range(3):
        flood = [asyncio.ensure_future(accounts.sign_up(_form("ann"))) for _ in range(64)]
        await asyncio.sleep(0)
        during_flood.append(await sign_in_seconds())
        outcomes = await asyncio.gather(*flood, return_exceptions=True)
        assert all(
            isinstance(o, ValidationError) and o.fields == {"username": "That username is taken."} for o in outcomes
        )
    assert min(during_flood) < 5 * alone + 0.05, (alone, during_flood)

"""Sign-in throttling: per (account, address) with growing back-off, a much higher account-wide
ceiling, a per-address ceiling over all accounts, and counters shared through the bucket."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from starlette.testclient import TestClient

from archive.auth import Auth
from archive.errors import TooManyRequests
from archive.signin import Limits, SignIn
from archive.storage import ObjectStore
from tests.test_auth import PASSWORD, add_editor, csrf_of


class Clock:
    """Wall-clock seconds the test moves by hand (counters are shared, so they use real time)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def throttled_for(attempt: object) -> int:
    """The Retry-After of a refused attempt (fails the test when it was not refused)."""
    with pytest.raises(TooManyRequests) as refused:
        attempt()  # type: ignore[operator]
    return refused.value.retry_after


def client_from(client: TestClient, address: str) -> TestClient:
    """Another browser at another address, talking to the same running app."""
    other = TestClient(client.app, base_url=str(client.base_url), client=(address, 40000))
    return other


def test_guesses_from_one_address_do_not_lock_out_the_editor_elsewhere(
        store: ObjectStore, client: TestClient) -> None:
    add_editor(store)
    attacker = client_from(client, "203.0.113.66")
    statuses = [attacker.post("/login", data={"username": "editor", "password": "guess-guess"}
                              ).status_code for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    editor = client_from(client, "198.51.100.7")
    csrf = csrf_of(editor, "/login")
    right = editor.post("/login", data={"username": "editor", "password": PASSWORD,
                                        "csrf": csrf}, follow_redirects=False)
    assert right.status_code == 303, right.text
    still = attacker.post("/login", data={"username": "editor", "password": PASSWORD})
    assert still.status_code == 429 and int(still.headers["retry-after"]) > 0


def test_the_back_off_grows_and_a_success_clears_it(store: ObjectStore) -> None:
    add_editor(store)
    clock = Clock()
    signin = SignIn(Auth(store, ttl=0), clock=clock)
    for _ in range(5):
        assert signin.attempt("editor", "wrong-wrong", "10.0.0.1") is None
    first = throttled_for(lambda: signin.attempt("editor", PASSWORD, "10.0.0.1"))
    assert 55 <= first <= 61
    clock.now += first
    assert signin.attempt("editor", "wrong-wrong", "10.0.0.1") is None  # the sixth failure
    second = throttled_for(lambda: signin.attempt("editor", "wrong-wrong", "10.0.0.1"))
    assert 115 <= second <= 121  # doubled
    clock.now += second
    assert signin.attempt("editor", PASSWORD, "10.0.0.1") == "editor"
    for _ in range(5):  # the success cleared that address's record: five free failures again
        assert signin.attempt("editor", "wrong-wrong", "10.0.0.1") is None
    clock.now += 61
    for _ in range(20):  # the back-off never exceeds an hour
        clock.now += 3601
        assert signin.attempt("editor", "wrong-wrong", "10.0.0.1") is None
    assert throttled_for(lambda: signin.attempt("editor", "wrong-wrong", "10.0.0.1")) <= 3601


def test_the_account_wide_ceiling_is_much_higher_and_holds(store: ObjectStore) -> None:
    add_editor(store)
    clock = Clock()
    signin = SignIn(Auth(store, ttl=0), clock=clock, limits=Limits(account=12))
    for n in range(12):  # twelve addresses, one guess each
        assert signin.attempt("editor", "wrong-wrong", f"10.0.1.{n}") is None
    wait = throttled_for(lambda: signin.attempt("editor", PASSWORD, "10.0.2.1"))
    assert 0 < wait <= Limits().window + 1
    clock.now += Limits().window + 1
    assert signin.attempt("editor", PASSWORD, "10.0.2.1") == "editor"


def test_one_address_guessing_many_accounts_is_throttled(store: ObjectStore) -> None:
    signin = SignIn(Auth(store, ttl=0), clock=Clock())
    for n in range(20):
        assert signin.attempt(f"user{n}", "guess-guess", "10.9.9.9") is None
    throttled_for(lambda: signin.attempt("user99", "guess-guess", "10.9.9.9"))
    assert signin.attempt("user99", "guess-guess", "10.9.9.10") is None


def test_counters_are_shared_between_processes(store: ObjectStore) -> None:
    """Two SignIn instances (as in two processes) on one bucket count the same failures."""
    add_editor(store)
    clock = Clock()
    first = SignIn(Auth(store, ttl=0), clock=clock)
    second = SignIn(Auth(store, ttl=0), clock=clock)
    for n in range(5):
        assert (first if n % 2 else second).attempt("editor", "wrong-wrong", "10.0.0.5") is None
    throttled_for(lambda: first.attempt("editor", PASSWORD, "10.0.0.5"))
    throttled_for(lambda: second.attempt("editor", PASSWORD, "10.0.0.5"))
    assert second.attempt("editor", PASSWORD, "10.0.0.6") == "editor"


def test_counters_are_kept_hashed_in_a_few_shards(store: ObjectStore) -> None:
    signin = SignIn(Auth(store, ttl=0), clock=Clock())
    for n in range(30):
        assert signin.attempt(f"someone{n}", "guess-guess", f"192.0.2.{n}") is None
    keys = [info.key for info in store.list("auth/signin/")]
    assert 0 < len(keys) <= 64
    raw = b"".join(store.get_bytes(key)[0] for key in keys)  # type: ignore[index]
    assert b"someone" not in raw and b"192.0.2." not in raw


def _parallel(signin: SignIn, addresses: list[str]) -> list[str]:
    barrier = Barrier(len(addresses))

    def guess(address: str) -> str:
        barrier.wait()
        try:
            return "checked" if signin.attempt("editor", "wrong-guess", address) is None \
                else "signed in"
        except TooManyRequests:
            return "throttled"

    with ThreadPoolExecutor(len(addresses)) as pool:
        return list(pool.map(guess, addresses))


def test_parallel_guesses_cannot_outrun_the_limit(store: ObjectStore) -> None:
    """Forty guesses at once: at most the limit of them reach the password check, whether they
    come from one address (the back-off) or from forty (the account-wide ceiling). An attempt in
    flight may briefly count twice (refused early, never let through); nothing is lost: the
    guesses that follow reach exactly the limit."""
    add_editor(store)
    signin = SignIn(Auth(store, ttl=60))
    one = _parallel(signin, ["10.0.0.1"] * 40)
    checked = one.count("checked")
    assert 1 <= checked <= 5 and one.count("throttled") == 40 - checked
    for _ in range(5 - checked):
        assert signin.attempt("editor", "wrong-guess", "10.0.0.1") is None
    throttled_for(lambda: signin.attempt("editor", "wrong-guess", "10.0.0.1"))

    signin = SignIn(Auth(store, ttl=60), limits=Limits(account=15))  # 5 already counted
    many = _parallel(signin, [f"10.0.3.{n}" for n in range(40)])
    checked = many.count("checked")
    assert 1 <= checked <= 10 and many.count("throttled") == 40 - checked
    for n in range(10 - checked):
        assert signin.attempt("editor", "wrong-guess", f"10.0.4.{n}") is None
    throttled_for(lambda: signin.attempt("editor", PASSWORD, "10.0.5.1"))

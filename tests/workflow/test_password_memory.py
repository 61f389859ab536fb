"""Password hashing holds argon2's memory cost while it runs: one hash at a time per process."""
import threading
import time

from workflow import accounts


class _Watched:
    """Stands in for argon2's hasher and records how many calls ran at once."""

    def __init__(self):
        self.running = self.most = 0
        self.lock = threading.Lock()

    def _enter(self):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1

    def hash(self, password):
        self._enter()
        return f"hashed:{password}"

    def verify(self, password_hash, password):
        self._enter()
        return password_hash == f"hashed:{password}"


def test_concurrent_sign_ins_hash_one_at_a_time(monkeypatch):
    watched = _Watched()
    monkeypatch.setattr(accounts, "_hasher", watched)
    user = type("User", (), {"password_hash": "hashed:right"})()
    results = []

    def work(number):
        if number % 2:
            results.append(accounts.check_password(user, "right"))
        else:
            results.append(accounts._hash("new password") == "hashed:new password")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 8 and watched.most == 1


def test_the_real_hasher_still_checks_passwords():
    user = type("User", (), {"password_hash": accounts._hash("correct horse battery")})()
    assert accounts.check_password(user, "correct horse battery")
    assert not accounts.check_password(user, "wrong horse battery")

"""argon2id password hashing, always run off the event loop."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True)
class PasswordPolicy:
    """argon2id cost parameters (OWASP minimum: 19 MiB, t=2, p=1) and length rules."""

    memory_kib: int = 19_456
    time_cost: int = 2
    parallelism: int = 1
    min_chars: int = 10
    max_chars: int = 1024
    max_concurrent: int = 2  # argon2 is CPU- and memory-bound: more threads than cores only queue


class Passwords:
    """Hashes and verifies passwords; a dummy hash keeps unknown users as slow as wrong passwords."""

    def __init__(self, policy: PasswordPolicy) -> None:
        self.policy = policy
        self._hasher = PasswordHasher(
            time_cost=policy.time_cost,
            memory_cost=policy.memory_kib,
            parallelism=policy.parallelism,
            type=Type.ID,
        )
        # Its own small pool: a flood of sign-ins queues here instead of starving database work.
        self._pool = ThreadPoolExecutor(max_workers=policy.max_concurrent, thread_name_prefix="argon2")

    def warm_up(self) -> None:
        """Compute the dummy hash now, so the first unknown username is not slower than the rest."""
        _ = self._dummy_hash

    @cached_property
    def _dummy_hash(self) -> str:
        return self._hasher.hash("chatapp dummy password for timing")

    async def hash(self, password: str) -> str:
        """Hash a password with argon2id in a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password; with no hash (unknown user) it still spends the same time."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._verify_sync, password_hash, password)

    def _verify_sync(self, password_hash: str | None, password: str) -> bool:
        try:
            self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the stored hash was made with other parameters than the policy's."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

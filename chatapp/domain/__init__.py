"""The domain: accounts, rooms, participants, messages. No UI, no SQL."""

"""Storage: SQLModel tables, repositories, the transactor and pub/sub adapters."""

"""Reading users' tables and shaping them into train, validation and test splits (in memory or on disk)."""

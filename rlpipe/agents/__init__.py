"""SB3 agents: device choice, seeding, training callbacks."""

"""Notes: a web process that stores notes in Postgres and queues a job per note on Redis, a
worker that counts each note's words, and a release command that migrates the schema."""

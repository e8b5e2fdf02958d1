"""The mesh's agents: thin glue between topics and engines (autodiscovered by the app)."""

"""The stream plumbing under the agents: the commit barrier and durable tables that keep a cycle's
state and outputs together, dead letters, telemetry, the broker profile, diagnostics, the
recovery watch, and `transport/`, the measured fixes to Faust's and aiokafka's Kafka transport.
"""

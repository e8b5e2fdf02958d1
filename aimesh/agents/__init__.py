"""The mesh's agents: thin glue between topics and the cycle's steps, autodiscovered by the app
(nothing else imports them). Beside them, private: `_guard` (checks on arrival, dead letters),
`_ledger` (which attempts are done, so a redelivery is skipped), `_underway` (the attempts being
worked on, so a copy arriving beside its original is skipped), `_in_flight` (the Producer's
window of open cycles)."""

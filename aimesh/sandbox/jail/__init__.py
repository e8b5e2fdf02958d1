"""What runs inside the fork server and its children: standard library only.

The server is started as `python -I -S server.py`, with no site-packages, so everything here
imports nothing outside the standard library; the engine imports the same modules (for the
protocol and for tests) as `aimesh.sandbox.jail`.
"""

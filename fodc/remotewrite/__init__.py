"""Prometheus remote-write 1.0 from the agent's window: the wire encoding, what to send, and the senders.

The window is the send queue: each receiver has a cursor into it (kept on disk), so a receiver outage costs lag,
never data the window still holds, and an agent restart resumes where the sending stopped. Pure parts
(encode.py, plan.py, state.py) take no clocks or sockets; client.py and sender.py are the I/O around them.
"""

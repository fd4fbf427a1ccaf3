"""quickloop: a drop-in asyncio event loop written in C, built for fast cancellation."""

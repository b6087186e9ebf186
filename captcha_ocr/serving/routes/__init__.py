"""The server's routes, one router per concern: the native API, ddddocr's two APIs, and status."""

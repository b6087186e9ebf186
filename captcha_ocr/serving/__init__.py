"""The reader over HTTP: ``captcha-ocr serve``."""

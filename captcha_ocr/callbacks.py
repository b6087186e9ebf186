"""Kept so that configs and saved ``config.yaml`` files naming ``captcha_ocr.callbacks.<Class>``
keep working; the callbacks live in ``captcha_ocr.training.callbacks``."""

from captcha_ocr.training.callbacks import HParamsMetrics, ValidationErrorsLogger

__all__ = ["HParamsMetrics", "ValidationErrorsLogger"]

"""A server in the manner of ddddocr-fastapi, the server most ddddocr users run, written after its
documented API for ``benchmarks/serve.py`` to compare against: ``POST /ocr`` with form fields
``file`` or ``image`` (base64), ``probability``, ``charsets``, ``png_fix``, answered
``{"code", "message", "data"}``; one ``ddddocr.DdddOcr`` classifying in the request handler,
``set_ranges(charsets)`` when charsets are sent.

    python benchmarks/ddddocr_fastapi_app.py --port 8001
"""

import argparse
import base64

import ddddocr
import uvicorn
from fastapi import FastAPI, File, Form, UploadFile

app = FastAPI()
ocr = ddddocr.DdddOcr(show_ad=False)


@app.post("/ocr")
async def ocr_endpoint(
    file: UploadFile | None = File(None),  # noqa: B008 (FastAPI's form parameters)
    image: str | None = Form(None),
    probability: bool = Form(False),
    charsets: str | None = Form(None),
    png_fix: bool = Form(False),
) -> dict:
    if file is None and image is None:
        return {"code": 400, "message": "Either file or image must be provided", "data": None}
    try:
        content = await file.read() if file is not None else base64.b64decode(image.split(",")[-1])
        if charsets:
            ocr.set_ranges(charsets)
        return {"code": 200, "message": "Success", "data": ocr.classification(content, probability=probability,
                                                                              png_fix=png_fix)}  # fmt: skip
    except Exception as error:
        return {"code": 500, "message": str(error), "data": None}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8001)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning")

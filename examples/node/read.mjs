#!/usr/bin/env node
// Read captchas with a captcha_ocr .onnx file alone, in Node: no Python, no preparation code.
//
//   npm install --ignore-scripts   (onnxruntime-node's install script only fetches GPU binaries)
//   node read.mjs MODEL.onnx IMAGE.png [IMAGE.png ...]   ->  one JSON line per image
//
// The file holds the network (input `images`, output `logits`) and, in its metadata, the model's
// spec (`captcha_ocr.spec`: charset, lengths, head) and the graph that prepares an image
// (`captcha_ocr.preparation`, a base64 ONNX model: grey pixels in, the network's input out).
// What is left to a program is to decode the PNG to grey pixels and to read the logits.

import { readFileSync } from "node:fs";
import process from "node:process";
import ort from "onnxruntime-node";
import { PNG } from "pngjs";

const SPEC_KEY = "captcha_ocr.spec";
const PREPARATION_KEY = "captcha_ocr.preparation";

// The metadata of an ONNX file: ModelProto field 14 holds (key = 1, value = 2) string pairs.
function onnxMetadata(bytes) {
  let at = 0;
  const varint = () => {
    let value = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = bytes[at++];
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return value;
    }
  };
  const fields = (end, onField) => {
    while (at < end) {
      const tag = Number(varint());
      const [number, wire] = [tag >>> 3, tag & 7];
      if (wire === 0) varint();
      else if (wire === 1) at += 8;
      else if (wire === 5) at += 4;
      else if (wire === 2) {
        const length = Number(varint());
        onField(number, at, at + length);
        at += length;
      } else throw new Error(`not an ONNX file (wire type ${wire})`);
    }
  };
  const text = (start, end) => new TextDecoder().decode(bytes.subarray(start, end));
  const metadata = {};
  fields(bytes.length, (number, start, end) => {
    if (number !== 14) return;
    const entry = {};
    const resume = at;
    at = start;
    fields(end, (field, s, e) => { entry[field] = text(s, e); });
    at = resume;
    metadata[entry[1]] = entry[2];
  });
  return metadata;
}

// Pillow's 8-bit grey of a PNG: (19595 R + 38470 G + 7471 B + 32768) >> 16, exact for opaque pixels;
// partly transparent ones are laid over white first, rounded as here (Pillow's own compositing may
// differ by a grey level).
function greyPixels(file) {
  const png = PNG.sync.read(readFileSync(file));
  const grey = new Uint8Array(png.width * png.height);
  for (let i = 0; i < grey.length; i++) {
    const [a, rgb] = [png.data[4 * i + 3], [0, 1, 2].map((c) => png.data[4 * i + c])];
    const [r, g, b] = a === 255 ? rgb : rgb.map((v) => Math.round((v * a + 255 * (255 - a)) / 255));
    grey[i] = (19595 * r + 38470 * g + 7471 * b + 32768) >>> 16;
  }
  return new ort.Tensor("uint8", grey, [1, png.height, png.width]);
}

// The position head's reading (the first max_length steps of the joint head): the most probable
// text of an allowed length, and its probability (each character's and the end class after it).
function readPositions(logits, steps, classes, spec) {
  const logSoftmax = (t) => {
    const row = Array.from(logits.subarray(t * classes, (t + 1) * classes));
    const top = Math.max(...row);
    const total = Math.log(row.reduce((sum, v) => sum + Math.exp(v - top), 0));
    return row.map((v) => v - top - total);
  };
  const L = spec.max_length;
  const rows = Array.from({ length: L }, (_, t) => logSoftmax(t));
  const best = rows.map((row) => row.slice(1).reduce((b, v, c) => (v > row[b] ? c + 1 : b), 1));
  let chosen = null;
  for (let n = spec.min_length; n <= Math.min(spec.max_length, L); n++) {
    let score = n < L ? rows[n][0] : 0;
    for (let t = 0; t < n; t++) score += rows[t][best[t]];
    if (chosen === null || score > chosen.score) chosen = { n, score };
  }
  const text = best.slice(0, chosen.n).map((id) => spec.charset[id - 1]).join("");
  return { text, confidence: Math.exp(chosen.score) };
}

async function main([model, ...images]) {
  if (!model || images.length === 0) {
    console.error("usage: node read.mjs MODEL.onnx IMAGE.png [IMAGE.png ...]");
    return 2;
  }
  const bytes = readFileSync(model);
  const metadata = onnxMetadata(bytes);
  if (!(SPEC_KEY in metadata) || !(PREPARATION_KEY in metadata)) {
    console.error(`${model}: no ${SPEC_KEY} and ${PREPARATION_KEY} metadata (export it with captcha-ocr export)`);
    return 2;
  }
  const spec = JSON.parse(metadata[SPEC_KEY]);
  if (spec.head === "ctc") {
    console.error(`${model}: this example reads the position and joint heads, not ${spec.head}`);
    return 2;
  }
  const network = await ort.InferenceSession.create(bytes);
  const preparation = await ort.InferenceSession.create(Buffer.from(metadata[PREPARATION_KEY], "base64"));
  for (const file of images) {
    const { images: prepared } = await preparation.run({ pixels: greyPixels(file) });
    const { logits } = await network.run({ images: prepared });
    const [, steps, classes] = logits.dims;
    console.log(JSON.stringify({ file, ...readPositions(logits.data, steps, classes, spec) }));
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));

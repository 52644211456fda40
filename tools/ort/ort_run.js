// Runs an ONNX model in ONNX Runtime (onnxruntime-node) for mpq's tests and benchmarks.
// Tensors travel as .npy files, which both sides read and write.
//   node ort_run.js run   MODEL OUT_DIR IN0.npy [IN1.npy ...]   writes OUT_DIR/output_<k>.npy
//   node ort_run.js bench MODEL THREADS SECONDS IN0.npy [...]   prints {"runs":n,"seconds":s}
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const kTypes = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array], '<i2': ['int16', Int16Array],
  '|i1': ['int8', Int8Array], '|u1': ['uint8', Uint8Array], '|b1': ['bool', Uint8Array],
};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim())
      .filter(s => s.length).map(Number);
  const t = kTypes[descr];
  if (!t) throw new Error(`${file}: dtype ${descr} not supported`);
  const offset = start + headerLen;
  const bytes = buf.subarray(offset);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  let data = new t[1](copy.buffer, 0, copy.length / t[1].BYTES_PER_ELEMENT);
  if (t[0] === 'bool') data = Uint8Array.from(data).map(v => v !== 0);
  return new ort.Tensor(t[0], t[0] === 'bool' ? Array.from(data, v => !!v) : data, shape);
}

function writeNpy(file, tensor) {
  const descr = Object.keys(kTypes).find(k => kTypes[k][0] === tensor.type);
  if (!descr) throw new Error(`output type ${tensor.type} not supported`);
  let data = tensor.data;
  if (tensor.type === 'bool') data = Uint8Array.from(data, v => (v ? 1 : 0));
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

async function main() {
  const [mode, model, arg, ...rest] = process.argv.slice(2);
  if (mode === 'run') {
    const session = await ort.InferenceSession.create(model, {intraOpNumThreads: 1});
    const feeds = {};
    session.inputNames.forEach((name, i) => { feeds[name] = readNpy(rest[i]); });
    const results = await session.run(feeds);
    session.outputNames.forEach((name, k) => writeNpy(path.join(arg, `output_${k}.npy`), results[name]));
  } else if (mode === 'bench') {
    const [seconds, ...inputs] = rest;
    const session = await ort.InferenceSession.create(model, {
      intraOpNumThreads: Number(arg), interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all'});
    const feeds = {};
    session.inputNames.forEach((name, i) => { feeds[name] = readNpy(inputs[i]); });
    for (let i = 0; i < 3; ++i) await session.run(feeds);
    let runs = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0;
    while (elapsed < Number(seconds) || runs < 3) {
      await session.run(feeds);
      ++runs;
      elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    }
    console.log(JSON.stringify({runs, seconds: elapsed}));
  } else {
    throw new Error('usage: ort_run.js run|bench MODEL ...');
  }
}

main().catch(e => { console.error(`ort_run: ${e.message}`); process.exit(1); });

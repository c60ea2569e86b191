// Independent check of a Parquet file written by llem: reads it with
// hyparquet (pure JS, no Arrow code shared with the Go writer) and prints
// {columns, rows, llem} as JSON. Usage: node read_parquet.mjs <readers-dir> <file>
import { createRequire } from 'node:module';
import path from 'node:path';
import fs from 'node:fs';

const [readers, file] = process.argv.slice(2);
const require = createRequire(path.join(readers, 'package.json'));
const { parquetMetadata, parquetReadObjects, parquetSchema } = await import(require.resolve('hyparquet'));
const { compressors } = await import(require.resolve('hyparquet-compressors'));

const buf = fs.readFileSync(file);
const arrayBuffer = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
const metadata = parquetMetadata(arrayBuffer);
const columns = parquetSchema(metadata).children.map(c => c.element.name);
const rows = await parquetReadObjects({ file: arrayBuffer, compressors });
const kv = Object.fromEntries((metadata.key_value_metadata || []).map(e => [e.key, e.value]));
process.stdout.write(JSON.stringify({ columns, rows, llem: kv.llem ? JSON.parse(kv.llem) : null },
  (k, v) => typeof v === 'bigint' ? Number(v) : v));

// Independent readers for Parquet files written by llem's exporters: hyparquet
// (pure JS) and DuckDB (C++), neither sharing code with arrow-go. Prints one
// JSON object. Usage: node read_parquet.mjs <readers-dir> <file> [sql]
// The optional sql runs in DuckDB with the file as view t.
import { createRequire } from 'node:module';
import path from 'node:path';
import fs from 'node:fs';

const [readers, file, sql] = process.argv.slice(2);
const require = createRequire(path.join(readers, 'package.json'));
const { parquetMetadata, parquetReadObjects, parquetSchema } = await import(require.resolve('hyparquet'));
const { compressors } = await import(require.resolve('hyparquet-compressors'));
const { DuckDBInstance } = await import(require.resolve('@duckdb/node-api'));

const buf = fs.readFileSync(file);
const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
const md = parquetMetadata(ab);
const hy = {
  num_rows: Number(md.num_rows),
  columns: parquetSchema(md).children.map(c => c.element.name),
  kv: Object.fromEntries((md.key_value_metadata || []).map(e => [e.key, e.value])),
  rows: await parquetReadObjects({ file: ab, compressors, rowEnd: 3 }),
};

const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const q = async (s) => (await con.runAndReadAll(s)).getRowObjectsJson();
const lit = "'" + file.replaceAll("'", "''") + "'";
await con.run(`CREATE VIEW t AS SELECT * FROM read_parquet(${lit})`);
const duck = {
  count: Number((await q('SELECT count(*) AS n FROM t'))[0].n),
  types: Object.fromEntries((await q('DESCRIBE t')).map(r => [r.column_name, r.column_type])),
  huggingface: (await q(`SELECT decode(value) AS v FROM parquet_kv_metadata(${lit}) WHERE decode(key) = 'huggingface'`)).map(r => r.v)[0] ?? null,
  query: sql ? await q(sql) : null,
};
process.stdout.write(JSON.stringify({ hyparquet: hy, duckdb: duck }, (k, v) => typeof v === 'bigint' ? Number(v) : v));

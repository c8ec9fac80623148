//! Writes Parquet files, row group by row group, with flat optional columns
//! and `MAP<string, string|double>` columns, through the `parquet` crate's
//! low-level column writers.
//!
//! Architecture invariants:
//! - Knows file formats only: nothing about costs, tenants or money. Callers
//!   (the demo generator, the exports) decide what the columns mean.
//! - Exists because the pipeline's dataframe library cannot write Parquet's
//!   MAP logical type, which CUR 2.0 uses for `product`, `resource_tags`,
//!   `cost_category` and `discount`.
//! - Streaming: a writer holds one row group at a time, so benchmark-sized
//!   files are written in bounded memory.
//!
//! Entry point: [`ParquetWriter`].

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, FixedLenByteArray, FixedLenByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// The type of one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Optional UTF-8 string.
    Utf8,
    /// Optional 64-bit float.
    Double,
    /// Optional 64-bit integer.
    Int64,
    /// Optional UTC timestamp in milliseconds.
    TimestampMillis,
    /// Optional exact decimal with this many digits after the point (at
    /// most 18 digits in all), stored as its unscaled 64-bit integer.
    Decimal(u8),
    /// Optional exact decimal of up to 38 digits with this many after the
    /// point, stored as its unscaled 128-bit integer (16 bytes, big-endian):
    /// `DECIMAL(38, scale)`, which holds any amount Tally takes at 18 places.
    Decimal128(u8),
    /// Optional `MAP<string, string>`.
    MapUtf8,
    /// Optional `MAP<string, double>`.
    MapDouble,
}

/// The entries of one MAP cell: keys and their optional values.
pub type MapEntries<'a, V> = Vec<(&'a str, Option<V>)>;

/// The values of one column in one row group.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData<'a> {
    Utf8(Vec<Option<&'a str>>),
    Double(Vec<Option<f64>>),
    Int64(Vec<Option<i64>>),
    TimestampMillis(Vec<Option<i64>>),
    /// Unscaled values and the scale they carry.
    Decimal(Vec<Option<i64>>, u8),
    /// Unscaled 128-bit values and the scale they carry.
    Decimal128(Vec<Option<i128>>, u8),
    MapUtf8(Vec<Option<MapEntries<'a, &'a str>>>),
    MapDouble(Vec<Option<MapEntries<'a, f64>>>),
}

impl ColumnData<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Utf8(v) => v.len(),
            Self::Double(v) => v.len(),
            Self::Int64(v) | Self::TimestampMillis(v) | Self::Decimal(v, _) => v.len(),
            Self::Decimal128(v, _) => v.len(),
            Self::MapUtf8(v) => v.len(),
            Self::MapDouble(v) => v.len(),
        }
    }

    fn kind(&self) -> ColumnType {
        match self {
            Self::Utf8(_) => ColumnType::Utf8,
            Self::Double(_) => ColumnType::Double,
            Self::Int64(_) => ColumnType::Int64,
            Self::TimestampMillis(_) => ColumnType::TimestampMillis,
            Self::Decimal(_, scale) => ColumnType::Decimal(*scale),
            Self::Decimal128(_, scale) => ColumnType::Decimal128(*scale),
            Self::MapUtf8(_) => ColumnType::MapUtf8,
            Self::MapDouble(_) => ColumnType::MapDouble,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("row group does not match the schema: {0}")]
    Shape(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A Parquet file being written, to a file or any stream (it never seeks).
/// Call [`ParquetWriter::finish`] to write its footer.
pub struct ParquetWriter<W: Write + Send = File> {
    columns: Vec<(String, ColumnType)>,
    inner: SerializedFileWriter<W>,
    rows: usize,
}

impl<W: Write + Send> std::fmt::Debug for ParquetWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetWriter").field("columns", &self.columns).field("rows", &self.rows).finish()
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn schema_text(columns: &[(String, ColumnType)]) -> String {
    let mut s = String::from("message schema {\n");
    for (name, kind) in columns {
        let field = match kind {
            ColumnType::Utf8 => format!("  optional binary {name} (STRING);\n"),
            ColumnType::Double => format!("  optional double {name};\n"),
            ColumnType::Int64 => format!("  optional int64 {name};\n"),
            ColumnType::TimestampMillis => format!("  optional int64 {name} (TIMESTAMP(MILLIS,true));\n"),
            ColumnType::Decimal(scale) => format!("  optional int64 {name} (DECIMAL(18,{scale}));\n"),
            ColumnType::Decimal128(scale) => format!("  optional fixed_len_byte_array(16) {name} (DECIMAL(38,{scale}));\n"),
            ColumnType::MapUtf8 => format!(
                "  optional group {name} (MAP) {{\n    repeated group key_value {{\n      required binary key (STRING);\n      optional binary value (STRING);\n    }}\n  }}\n"
            ),
            ColumnType::MapDouble => format!(
                "  optional group {name} (MAP) {{\n    repeated group key_value {{\n      required binary key (STRING);\n      optional double value;\n    }}\n  }}\n"
            ),
        };
        s.push_str(&field);
    }
    s.push('}');
    s
}

impl ParquetWriter<File> {
    /// Creates `path` (snappy-compressed) with the given columns.
    pub fn create(path: &Path, columns: &[(&str, ColumnType)]) -> Result<Self> {
        Self::to_writer(File::create(path)?, columns)
    }
}

impl<W: Write + Send> ParquetWriter<W> {
    /// Writes a Parquet file (snappy-compressed) with the given columns to `out`.
    pub fn to_writer(out: W, columns: &[(&str, ColumnType)]) -> Result<Self> {
        if let Some(bad) = columns.iter().find(|(n, _)| !is_plain_name(n)) {
            return Err(Error::Shape(format!("column name {:?} is not a plain identifier", bad.0)));
        }
        let columns: Vec<(String, ColumnType)> = columns.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        let schema = Arc::new(parse_message_type(&schema_text(&columns))?);
        let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).set_created_by("tally".into()).build());
        let inner = SerializedFileWriter::new(out, schema, props)?;
        Ok(Self { columns, inner, rows: 0 })
    }

    /// Writes one row group; every column in schema order, all of one length.
    pub fn write_row_group(&mut self, data: &[ColumnData<'_>]) -> Result<()> {
        if data.len() != self.columns.len() {
            return Err(Error::Shape(format!("{} columns given, {} in the schema", data.len(), self.columns.len())));
        }
        let rows = data.first().map_or(0, ColumnData::len);
        for ((name, kind), col) in self.columns.iter().zip(data) {
            if col.kind() != *kind || col.len() != rows {
                return Err(Error::Shape(format!("column {name}: expected {kind:?} x {rows}, got {:?} x {}", col.kind(), col.len())));
            }
        }
        let mut group = self.inner.next_row_group()?;
        for col in data {
            match col {
                ColumnData::Utf8(values) => {
                    let mut w = group.next_column()?.ok_or_else(|| Error::Shape("schema ended early".into()))?;
                    let (vals, defs) = flat(values.iter().map(|v| v.map(ByteArray::from)));
                    w.typed::<ByteArrayType>().write_batch(&vals, Some(&defs), None)?;
                    w.close()?;
                }
                ColumnData::Double(values) => {
                    let mut w = group.next_column()?.ok_or_else(|| Error::Shape("schema ended early".into()))?;
                    let (vals, defs) = flat(values.iter().copied());
                    w.typed::<DoubleType>().write_batch(&vals, Some(&defs), None)?;
                    w.close()?;
                }
                ColumnData::Int64(values) | ColumnData::TimestampMillis(values) | ColumnData::Decimal(values, _) => {
                    let mut w = group.next_column()?.ok_or_else(|| Error::Shape("schema ended early".into()))?;
                    let (vals, defs) = flat(values.iter().copied());
                    w.typed::<Int64Type>().write_batch(&vals, Some(&defs), None)?;
                    w.close()?;
                }
                ColumnData::Decimal128(values, _) => {
                    let mut w = group.next_column()?.ok_or_else(|| Error::Shape("schema ended early".into()))?;
                    let (vals, defs) = flat(values.iter().map(|v| v.map(|u| FixedLenByteArray::from(u.to_be_bytes().to_vec()))));
                    w.typed::<FixedLenByteArrayType>().write_batch(&vals, Some(&defs), None)?;
                    w.close()?;
                }
                ColumnData::MapUtf8(rows) => {
                    let levels = MapLevels::of(rows.iter().map(|r| r.as_ref().map(|e| e.iter().map(|(k, v)| (*k, v.map(ByteArray::from))))));
                    let mut kw = group.next_column()?.ok_or_else(|| Error::Shape("schema ended early".into()))?;
                    kw.typed::<ByteArrayType>().write_batch(&levels.keys, Some(&levels.key_defs), Some(&levels.reps))?;
                    kw.close()?;
                    let mut vw = group.next_column()?.ok_or_else(|| Error::Shape("schema ended early".into()))?;
                    vw.typed::<ByteArrayType>().write_batch(&levels.values, Some(&levels.value_defs), Some(&levels.reps))?;
                    vw.close()?;
                }
                ColumnData::MapDouble(rows) => {
                    let levels = MapLevels::of(rows.iter().map(|r| r.as_ref().map(|e| e.iter().map(|(k, v)| (*k, *v)))));
                    let mut kw = group.next_column()?.ok_or_else(|| Error::Shape("schema ended early".into()))?;
                    kw.typed::<ByteArrayType>().write_batch(&levels.keys, Some(&levels.key_defs), Some(&levels.reps))?;
                    kw.close()?;
                    let mut vw = group.next_column()?.ok_or_else(|| Error::Shape("schema ended early".into()))?;
                    vw.typed::<DoubleType>().write_batch(&levels.values, Some(&levels.value_defs), Some(&levels.reps))?;
                    vw.close()?;
                }
            }
        }
        group.close()?;
        self.rows += rows;
        Ok(())
    }

    /// Writes the footer; returns the number of rows written.
    pub fn finish(self) -> Result<usize> {
        self.inner.close()?;
        Ok(self.rows)
    }

    /// Writes the footer and returns the writer the file went to.
    pub fn into_inner(self) -> Result<W> {
        Ok(self.inner.into_inner()?)
    }
}

/// Non-null values and definition levels (1 = present, 0 = null) of an optional column.
fn flat<T>(values: impl Iterator<Item = Option<T>>) -> (Vec<T>, Vec<i16>) {
    let mut vals = Vec::new();
    let mut defs = Vec::new();
    for v in values {
        match v {
            Some(v) => {
                vals.push(v);
                defs.push(1);
            }
            None => defs.push(0),
        }
    }
    (vals, defs)
}

/// Levels of an optional MAP: the map itself (def 1 when present), its
/// repeated key_value group (def 2 when the map has entries; rep 1 for every
/// entry after a row's first), and the optional value (def 3 when non-null).
struct MapLevels<V> {
    keys: Vec<ByteArray>,
    key_defs: Vec<i16>,
    values: Vec<V>,
    value_defs: Vec<i16>,
    reps: Vec<i16>,
}

impl<V> MapLevels<V> {
    fn of<'a, R, E>(rows: R) -> Self
    where
        R: Iterator<Item = Option<E>>,
        E: Iterator<Item = (&'a str, Option<V>)>,
    {
        let mut l = MapLevels { keys: Vec::new(), key_defs: Vec::new(), values: Vec::new(), value_defs: Vec::new(), reps: Vec::new() };
        for row in rows {
            match row {
                None => {
                    l.key_defs.push(0);
                    l.value_defs.push(0);
                    l.reps.push(0);
                }
                Some(entries) => {
                    let mut first = true;
                    for (k, v) in entries {
                        l.keys.push(ByteArray::from(k));
                        l.key_defs.push(2);
                        match v {
                            Some(v) => {
                                l.values.push(v);
                                l.value_defs.push(3);
                            }
                            None => l.value_defs.push(2),
                        }
                        l.reps.push(if first { 0 } else { 1 });
                        first = false;
                    }
                    if first {
                        l.key_defs.push(1);
                        l.value_defs.push(1);
                        l.reps.push(0);
                    }
                }
            }
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    #[test]
    fn decimal128_columns_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.parquet");
        let mut w = ParquetWriter::create(&path, &[("cost", ColumnType::Decimal128(18))]).unwrap();
        // 0.1, -12.345678901234567891 and a thousand trillion, at 18 places.
        let one = 10i128.pow(18);
        let values = vec![Some(one / 10), None, Some(-12_345_678_901_234_567_891), Some(1_000_000_000_000_000 * one)];
        w.write_row_group(&[ColumnData::Decimal128(values.clone(), 18)]).unwrap();
        w.finish().unwrap();
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let column = reader.metadata().file_metadata().schema_descr().column(0);
        assert_eq!((column.type_precision(), column.type_scale()), (38, 18));
        let read: Vec<Option<i128>> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| match r.unwrap().get_column_iter().next().unwrap().1 {
                Field::Decimal(d) => Some(i128::from_be_bytes(d.data().try_into().unwrap())),
                Field::Null => None,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(read, values);
    }

    #[test]
    fn flat_and_map_columns_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut w = ParquetWriter::create(
            &path,
            &[
                ("name", ColumnType::Utf8),
                ("cost", ColumnType::Double),
                ("at", ColumnType::TimestampMillis),
                ("tags", ColumnType::MapUtf8),
                ("discount", ColumnType::MapDouble),
            ],
        )
        .unwrap();
        w.write_row_group(&[
            ColumnData::Utf8(vec![Some("a"), None, Some("c")]),
            ColumnData::Double(vec![Some(0.1), Some(2.5), None]),
            ColumnData::TimestampMillis(vec![Some(1_700_000_000_000), None, Some(0)]),
            ColumnData::MapUtf8(vec![Some(vec![("user_tenant", Some("acme")), ("env", None)]), Some(vec![]), None]),
            ColumnData::MapDouble(vec![None, Some(vec![("bundled_discount", Some(-1.5))]), Some(vec![])]),
        ])
        .unwrap();
        w.write_row_group(&[
            ColumnData::Utf8(vec![Some("d")]),
            ColumnData::Double(vec![Some(1.0)]),
            ColumnData::TimestampMillis(vec![Some(1)]),
            ColumnData::MapUtf8(vec![Some(vec![("k", Some("v"))])]),
            ColumnData::MapDouble(vec![None]),
        ])
        .unwrap();
        assert_eq!(w.finish().unwrap(), 4);

        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let rows: Vec<_> = reader.get_row_iter(None).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 4);
        let fields: Vec<(String, Field)> = rows[0].get_column_iter().map(|(n, f)| (n.clone(), f.clone())).collect();
        assert_eq!(fields[0].1, Field::Str("a".into()));
        assert_eq!(fields[1].1, Field::Double(0.1));
        match &fields[3].1 {
            Field::MapInternal(m) => {
                let entries = m.entries();
                assert_eq!(entries.len(), 2);
                assert_eq!(entries[0], (Field::Str("user_tenant".into()), Field::Str("acme".into())));
                assert_eq!(entries[1], (Field::Str("env".into()), Field::Null));
            }
            other => panic!("expected a map, got {other:?}"),
        }
        let row1: Vec<Field> = rows[1].get_column_iter().map(|(_, f)| f.clone()).collect();
        assert_eq!(row1[0], Field::Null);
        assert!(matches!(&row1[3], Field::MapInternal(m) if m.entries().is_empty()));
        let row2: Vec<Field> = rows[2].get_column_iter().map(|(_, f)| f.clone()).collect();
        assert_eq!(row2[3], Field::Null);
    }

    #[test]
    fn a_row_group_that_does_not_match_the_schema_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ParquetWriter::create(&dir.path().join("t.parquet"), &[("a", ColumnType::Utf8)]).unwrap();
        assert!(w.write_row_group(&[ColumnData::Double(vec![Some(1.0)])]).is_err());
        assert!(ParquetWriter::create(&dir.path().join("u.parquet"), &[("bad name", ColumnType::Utf8)]).is_err());
    }
}

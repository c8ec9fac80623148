//! Checks every page of a Parquet file against the counts its headers and
//! footer declare, before polars decodes it.
//!
//! polars trusts those counts: a damaged page whose run-length header
//! claims 2^61 values makes it attempt that allocation, and a failed
//! allocation aborts the process, which no `catch_unwind` can turn into an
//! error. So the counts are checked here, with polars' own Parquet crate
//! (the same footer and page-header parser, the same codecs), and a file
//! whose counts disagree is refused by name.
//!
//! What is checked, for every column chunk of every row group:
//! - the row groups add up to the footer's row count, a flat column holds
//!   one value per row, and the chunk lies inside the file;
//! - the pages add up to the chunk's value count;
//! - every run of repetition levels, definition levels, dictionary indices
//!   and run-length booleans fits in what is left of its page, and the
//!   value count a delta-encoded page declares fits in the page;
//! - a dictionary page is big enough for the values it declares.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use polars_buffer::Buffer;
use polars_parquet::parquet::compression::DecompressionContext;
use polars_parquet::parquet::encoding::{Encoding, uleb128};
use polars_parquet::parquet::metadata::{ColumnChunkMetadata, RowGroupMetadata};
use polars_parquet::parquet::page::{DataPageHeader, Page, split_buffer};
use polars_parquet::parquet::read::{PageReader, decompress, read_metadata_with_size};
use polars_parquet::parquet::schema::types::PhysicalType;
use rayon::prelude::*;

use super::ReadError;

/// Checks the Parquet file at `source` (named `file` in errors: `source`
/// may be a decompressed copy). Column chunks are checked in parallel.
pub(crate) fn check(source: &Path, file: &Path) -> Result<(), ReadError> {
    let damaged = |what: String| ReadError::file(file, format!("cannot read: the file is damaged ({what})"));
    let mut input = std::fs::File::open(source).map_err(|e| ReadError::file(file, format!("cannot open: {e}")))?;
    let size = input.metadata().map_err(|e| ReadError::file(file, format!("cannot open: {e}")))?.len();
    let footer = read_metadata_with_size(&mut input, size).map_err(|e| damaged(format!("its footer: {e}")))?;
    let rows: u64 = footer.row_groups.iter().map(|g| g.num_rows() as u64).sum();
    if rows != footer.num_rows as u64 {
        return Err(damaged(format!("the footer counts {} rows, its row groups {rows}", footer.num_rows)));
    }
    let chunks: Vec<(usize, &RowGroupMetadata, &ColumnChunkMetadata)> =
        footer.row_groups.iter().enumerate().flat_map(|(g, group)| group.parquet_columns().iter().map(move |chunk| (g, group, chunk))).collect();
    let failures: Vec<Option<ReadError>> = chunks
        .par_iter()
        .map_init(Vec::new, |scratch, &(g, group, chunk)| {
            let column = chunk.descriptor().path_in_schema.join(".");
            let at = |what: String| ReadError::column(file, &column, format!("cannot read: the file is damaged (row group {}: {what})", g + 1));
            if chunk.descriptor().descriptor.max_rep_level == 0 && chunk.num_values() != group.num_rows() as i64 {
                return Some(at(format!("{} values for {} rows", chunk.num_values(), group.num_rows())));
            }
            let range = chunk.byte_range();
            if range.start > range.end || range.end > size {
                return Some(at(format!("its bytes {}..{} lie outside the file's {size}", range.start, range.end)));
            }
            let mut bytes = vec![0u8; (range.end - range.start) as usize];
            let read = std::fs::File::open(source).and_then(|mut f| f.seek(SeekFrom::Start(range.start)).and_then(|_| f.read_exact(&mut bytes)));
            if let Err(e) = read {
                return Some(ReadError::file(file, format!("cannot read: {e}")));
            }
            check_chunk(chunk, Buffer::from(bytes), scratch).err().map(at)
        })
        .collect();
    match failures.into_iter().flatten().next() {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// Checks the pages of one column chunk, whose bytes are `bytes`.
fn check_chunk(chunk: &ColumnChunkMetadata, bytes: Buffer<u8>, scratch: &mut Vec<u8>) -> Result<(), String> {
    let descriptor = &chunk.descriptor().descriptor;
    let rep_bits = bit_width(descriptor.max_rep_level);
    let def_bits = bit_width(descriptor.max_def_level);
    let physical = descriptor.primitive_type.physical_type;
    let declared = chunk.num_values().max(0) as u64;
    let mut context = DecompressionContext::Unset;
    let mut seen = 0u64;
    for (p, page) in PageReader::new(Cursor::new(bytes), chunk, Vec::new(), usize::MAX).enumerate() {
        let at = |what: String| format!("page {}: {what}", p + 1);
        let page = page.and_then(|page| decompress(page, scratch, &mut context)).map_err(|e| at(e.to_string()))?;
        match page {
            Page::Dict(dict) => {
                let need = plain_bytes(physical, dict.num_values as u64);
                if need > dict.buffer.len() as u64 {
                    return Err(at(format!("a dictionary of {} values in {} bytes", dict.num_values, dict.buffer.len())));
                }
            }
            Page::Data(page) => {
                // A V1 header's count is signed: a negative one reads as huge.
                let values = page.num_values() as u64;
                if values > declared - seen {
                    return Err(at(format!("it claims {} values; the chunk has {} left", values as i64, declared - seen)));
                }
                seen += values;
                if let DataPageHeader::V2(v2) = page.header()
                    && (v2.num_nulls as u64 > values || v2.num_rows as u64 > values)
                {
                    return Err(at(format!("{} nulls and {} rows among {values} values", v2.num_nulls, v2.num_rows)));
                }
                let parts = split_buffer(&page).map_err(|e| at(e.to_string()))?;
                let v1 = matches!(page.header(), DataPageHeader::V1(_));
                if rep_bits > 0 && (!v1 || page.repetition_level_encoding() == Encoding::Rle) {
                    runs(parts.rep, rep_bits, values).map_err(|e| at(format!("repetition levels: {e}")))?;
                }
                if def_bits > 0 && (!v1 || page.definition_level_encoding() == Encoding::Rle) {
                    runs(parts.def, def_bits, values).map_err(|e| at(format!("definition levels: {e}")))?;
                }
                check_values(page.encoding(), physical, parts.values, values).map_err(at)?;
            }
        }
        scratch.clear();
    }
    if seen != declared {
        return Err(format!("its pages hold {seen} values, its footer says {declared}"));
    }
    Ok(())
}

/// Checks the encoded values of a data page of `values` values (nulls
/// included, so an upper bound on the values encoded).
fn check_values(encoding: Encoding, physical: PhysicalType, data: &[u8], values: u64) -> Result<(), String> {
    match encoding {
        Encoding::RleDictionary | Encoding::PlainDictionary => {
            let Some((&bits, indices)) = data.split_first() else { return Ok(()) };
            if bits > 32 {
                return Err(format!("dictionary indices of {bits} bits"));
            }
            runs(indices, usize::from(bits), values).map_err(|e| format!("dictionary indices: {e}"))
        }
        Encoding::Rle if physical == PhysicalType::Boolean => {
            // Run-length booleans start with their length (v1 and v2 pages alike).
            let data = data.get(4..).unwrap_or_default();
            runs(data, 1, values).map_err(|e| format!("booleans: {e}"))
        }
        Encoding::DeltaBinaryPacked | Encoding::DeltaLengthByteArray | Encoding::DeltaByteArray => {
            // <block size> <miniblocks per block> <total value count> <first value>
            let mut rest = data;
            let mut next = || -> Result<u64, String> {
                let (n, used) = varint(rest).ok_or("a delta header is cut off")?;
                rest = &rest[used..];
                Ok(n)
            };
            let (_block, _miniblocks, total) = (next()?, next()?, next()?);
            if total > values {
                return Err(format!("a delta header claims {total} values; the page holds {values}"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks a run-length/bit-packed hybrid stream of `bits`-bit values that
/// should hold at most `values` values: no run may claim more than what is
/// left (a bit-packed run rounds up to a group of eight).
fn runs(data: &[u8], bits: usize, values: u64) -> Result<(), String> {
    if bits == 0 {
        return Ok(());
    }
    let (mut left, mut rest) = (values, data);
    while left > 0 && !rest.is_empty() {
        let (header, used) = varint(rest).ok_or("a run header is cut off")?;
        rest = &rest[used..];
        let (count, allowed, bytes) = if header & 1 == 1 {
            let groups = header >> 1;
            (groups.saturating_mul(8), left.div_ceil(8) * 8, groups.saturating_mul(bits as u64))
        } else {
            (header >> 1, left, bits.div_ceil(8) as u64)
        };
        if count > allowed {
            return Err(format!("a run claims {count} values; {left} are left"));
        }
        left = left.saturating_sub(count);
        rest = rest.get(usize::try_from(bytes).unwrap_or(usize::MAX)..).unwrap_or_default();
    }
    Ok(())
}

/// A ULEB128 number at the start of `data` and its length in bytes; `None`
/// when it is cut off or longer than 64 bits.
fn varint(data: &[u8]) -> Option<(u64, usize)> {
    if data.iter().take(10).any(|b| b & 0x80 == 0) {
        let (n, used) = uleb128::decode(data);
        (used <= 10).then_some((n, used))
    } else {
        None
    }
}

/// Bits per level for levels up to `max`.
fn bit_width(max: i16) -> usize {
    (16 - max.max(0).leading_zeros()) as usize
}

/// The fewest bytes `n` plain-encoded values of a type can take.
fn plain_bytes(physical: PhysicalType, n: u64) -> u64 {
    match physical {
        PhysicalType::Boolean => n.div_ceil(8),
        PhysicalType::Int32 | PhysicalType::Float | PhysicalType::ByteArray => n.saturating_mul(4),
        PhysicalType::Int64 | PhysicalType::Double => n.saturating_mul(8),
        PhysicalType::Int96 => n.saturating_mul(12),
        PhysicalType::FixedLenByteArray(size) => n.saturating_mul(size as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_may_not_claim_more_values_than_its_page_has_left() {
        // An RLE run of 5 ones at width 1, then a bit-packed group of 8.
        assert_eq!(runs(&[5 << 1, 1, (1 << 1) | 1, 0xff], 1, 13), Ok(()));
        // The bit-packed group rounds up: 5 + 8 covers 12 values too.
        assert_eq!(runs(&[5 << 1, 1, (1 << 1) | 1, 0xff], 1, 12), Ok(()));
        assert_eq!(runs(&[6 << 1, 1], 1, 5), Err("a run claims 6 values; 5 are left".into()));
        // The damaged page polars aborted on: a run of 2^61 values.
        let mut huge = vec![];
        let mut n: u64 = 1 << 62;
        while n >= 0x80 {
            huge.push((n as u8) | 0x80);
            n >>= 7;
        }
        huge.push(n as u8);
        assert_eq!(runs(&huge, 1, 1000), Err(format!("a run claims {} values; 1000 are left", 1u64 << 61)));
        assert_eq!(runs(&[0x80, 0x80], 1, 10), Err("a run header is cut off".into()));
    }

    #[test]
    fn run_length_booleans_skip_their_length_on_v1_and_v2_pages() {
        // 1,000 trues: the 4-byte length (3), then one RLE run of 1,000 (varint 2,000) of 1.
        let page = [3, 0, 0, 0, 0xd0, 0x0f, 1];
        assert_eq!(check_values(Encoding::Rle, PhysicalType::Boolean, &page, 1000), Ok(()));
        assert!(check_values(Encoding::Rle, PhysicalType::Boolean, &page, 999).is_err());
    }

    #[test]
    fn level_widths() {
        assert_eq!([0, 1, 2, 3, 4, 7, 8].map(bit_width), [0, 1, 2, 2, 3, 3, 4]);
    }
}

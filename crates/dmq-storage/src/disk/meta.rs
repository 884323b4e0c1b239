//! The meta records a segment holds besides data (see the `disk` module
//! documentation): filler records with channel id 0 whose payload starts
//! with [`META_TAG`].

use super::layout::Loc;

/// First bytes of a meta record's payload.
pub const META_TAG: [u8; 8] = *b"DMQMETA1";

const META_NAME: u8 = 1;
const META_PROGRESS: u8 = 2;
const META_DROP: u8 = 3;

/// A meta record (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    Name { id: u32, name: String },
    Progress { id: u32, at: Loc },
    Drop { id: u32 },
}

impl Meta {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = META_TAG.to_vec();
        match self {
            Meta::Name { id, name } => {
                out.push(META_NAME);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(name.as_bytes());
            }
            Meta::Progress { id, at } => {
                out.push(META_PROGRESS);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&at.seg.to_le_bytes());
                out.extend_from_slice(&at.offset.to_le_bytes());
            }
            Meta::Drop { id } => {
                out.push(META_DROP);
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        out
    }

    /// The meta record in a filler payload, if it is one of ours.
    pub fn decode(payload: &[u8]) -> Option<Meta> {
        let rest = payload.strip_prefix(&META_TAG)?;
        let (&kind, rest) = rest.split_first()?;
        let (id, rest) = rest.split_first_chunk::<4>()?;
        let id = u32::from_le_bytes(*id);
        match kind {
            META_NAME => Some(Meta::Name {
                id,
                name: std::str::from_utf8(rest).ok()?.to_owned(),
            }),
            META_PROGRESS => {
                let (seg, rest) = rest.split_first_chunk::<4>()?;
                let offset = rest.first_chunk::<8>()?;
                Some(Meta::Progress {
                    id,
                    at: Loc {
                        seg: u32::from_le_bytes(*seg),
                        offset: u64::from_le_bytes(*offset),
                    },
                })
            }
            META_DROP => Some(Meta::Drop { id }),
            _ => None,
        }
    }
}

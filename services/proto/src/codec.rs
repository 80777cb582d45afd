//! The codec of every generated client and server: prost's, except that a message that
//! does not decode is INVALID_ARGUMENT with `ErrorInfo` reason `MALFORMED_REQUEST`
//! (domain `pos.v1`) rather than prost's INTERNAL with the decoder's text alone: the
//! client sent bytes that are not the message, which is its mistake to fix, not ours.
//!
//! It sits in this crate because the generated code names it; `pos_common`'s `Reason`
//! and `ERROR_DOMAIN` take the reason and domain from here. A client
//! decoding a response uses the same codec, so a peer's garbage response reads as the
//! same error; our own services never send one.

use std::{collections::HashMap, marker::PhantomData};

use prost::Message;
use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::ProstEncoder;
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error this system returns.
pub const ERROR_DOMAIN: &str = "pos.v1";

/// The `ErrorInfo.reason` of a message that does not decode.
pub const MALFORMED_REQUEST: &str = "MALFORMED_REQUEST";

/// prost encoding, and decoding whose failures are the caller's.
#[derive(Debug, Clone)]
pub struct PosCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for PosCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for PosCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = PosDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        PosDecoder(PhantomData)
    }
}

/// Decodes `U` with prost; see the module documentation for its errors.
#[derive(Debug, Clone)]
pub struct PosDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for PosDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|error| {
            Status::with_error_details(
                Code::InvalidArgument,
                format!("the message does not decode: {error}"),
                ErrorDetails::with_error_info(MALFORMED_REQUEST, ERROR_DOMAIN, HashMap::new()),
            )
        })
    }
}

//! Checked reading of untrusted bytes: every read either returns the field or a
//! [`FrameError::Truncated`] naming the layer, so parsers never index and never panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::{FrameError, Layer};
use super::mac::MacAddr;

/// A cursor over one layer's bytes.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
    consumed: usize,
    total: usize,
    layer: Layer,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8], layer: Layer) -> Self {
        Reader {
            rest: bytes,
            consumed: 0,
            total: bytes.len(),
            layer,
        }
    }

    fn truncated(&self, more: usize) -> FrameError {
        FrameError::Truncated {
            layer: self.layer,
            needed: self.consumed.saturating_add(more),
            available: self.total,
        }
    }

    /// Fails unless at least `n` more bytes remain. Checking a whole fixed header up front
    /// makes the error report the header's full size rather than the first short field.
    pub(super) fn require(&self, n: usize) -> Result<(), FrameError> {
        if self.rest.len() < n {
            return Err(self.truncated(n));
        }
        Ok(())
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or_else(|| self.truncated(N))?;
        self.rest = tail;
        self.consumed = self.consumed.saturating_add(N);
        Ok(*head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, FrameError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    pub(super) fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(super) fn mac(&mut self) -> Result<MacAddr, FrameError> {
        Ok(MacAddr(self.array()?))
    }

    pub(super) fn ipv4(&mut self) -> Result<Ipv4Addr, FrameError> {
        Ok(Ipv4Addr::from(self.array::<4>()?))
    }

    pub(super) fn ipv6(&mut self) -> Result<Ipv6Addr, FrameError> {
        Ok(Ipv6Addr::from(self.array::<16>()?))
    }

    /// Everything not read yet.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Takes the next `n` bytes as a slice (e.g. an IPv6 payload whose length the header
    /// declares), leaving anything after them (Ethernet padding) unread.
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or_else(|| self.truncated(n))?;
        self.rest = tail;
        self.consumed = self.consumed.saturating_add(n);
        Ok(head)
    }
}

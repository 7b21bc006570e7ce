//! A small deterministic generator for the randomised tests (xorshift): the same sequence on
//! every run.

/// A xorshift generator.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next number below `n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

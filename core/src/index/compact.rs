//! Vectors grown one allocator size class at a time. jemalloc, Redis's allocator, rounds every
//! allocation up to a size class (about four per doubling), so a vector that grows to the next
//! class (by an eighth to a quarter) instead of doubling fills the memory it is given.

/// The size jemalloc gives an allocation of `bytes`: 8, multiples of 16 up to 128, then four
/// classes per doubling.
pub(crate) fn size_class(bytes: usize) -> usize {
    match bytes {
        0 => 0,
        1..=8 => 8,
        9..=128 => bytes.next_multiple_of(16),
        _ => bytes
            .checked_next_power_of_two()
            .and_then(|power| bytes.checked_next_multiple_of(power / 8))
            .unwrap_or(bytes),
    }
}

/// The most elements of `T` that fit the size class of `len` of them.
pub(crate) fn class_capacity<T>(len: usize) -> usize {
    let size = size_of::<T>().max(1);
    size_class(len.saturating_mul(size)) / size
}

/// Makes room for one more element in a full vector: the next size class, but no more than
/// `max` elements (when `max` is above the length).
pub(crate) fn reserve_one<T>(vec: &mut Vec<T>, max: usize) {
    if vec.len() == vec.capacity() {
        let capacity = class_capacity::<T>(vec.len() + 1)
            .min(max)
            .max(vec.len() + 1);
        vec.reserve_exact(capacity - vec.len());
    }
}

/// Gives back the memory of a vector that fell below half its capacity, or is empty.
pub(crate) fn shrink<T>(vec: &mut Vec<T>) {
    if vec.len() < vec.capacity() / 2 || vec.is_empty() {
        vec.shrink_to(class_capacity::<T>(vec.len()));
    }
}

/// Gives back the memory past the size class of a vector's length (a block split off).
pub(crate) fn fit<T>(vec: &mut Vec<T>) {
    let capacity = class_capacity::<T>(vec.len());
    if vec.capacity() > capacity {
        vec.shrink_to(capacity);
    }
}

/// The point where a block of `len` values that passed its most, `max`, splits, the new value
/// being at `pos`: there when it is in the upper half, so that values that come in increasing
/// order (user ids given in sequence, the expiries of heartbeats) leave fuller blocks behind,
/// but keeping at least `max / 4` values on each side; else in the middle.
pub(crate) fn split_point(len: usize, pos: usize, max: usize) -> usize {
    pos.min(len - max / 4).max(len / 2)
}

/// The bytes a vector's buffer takes.
#[cfg(test)]
pub(crate) fn vec_bytes<T>(vec: &Vec<T>) -> usize {
    size_class(vec.capacity() * size_of::<T>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_are_jemallocs() {
        let classes = [
            8, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768,
            896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
        ];
        let mut class = classes.iter();
        let mut current = *class.next().unwrap();
        for bytes in 1..=8192 {
            if bytes > current {
                current = *class.next().unwrap();
            }
            assert_eq!(size_class(bytes), current, "{bytes}");
        }
        assert_eq!(size_class(0), 0);
        assert_eq!(size_class(usize::MAX), usize::MAX);
    }

    #[test]
    fn growth_stops_at_the_cap() {
        let mut vec: Vec<u64> = Vec::new();
        let mut capacities = Vec::new();
        for i in 0..64u64 {
            reserve_one(&mut vec, 64);
            vec.push(i);
            capacities.push(vec.capacity());
        }
        assert_eq!(vec.capacity(), 64);
        assert!(capacities.iter().all(|&c| c <= 64));
        vec.truncate(10);
        shrink(&mut vec);
        assert!(vec.capacity() < 32, "{}", vec.capacity());
        vec.extend(0..8);
        fit(&mut vec);
        assert_eq!(vec.capacity(), 20);
    }

    #[test]
    fn blocks_split_at_a_value_in_their_upper_half() {
        assert_eq!(split_point(513, 512, 512), 385);
        assert_eq!(split_point(513, 400, 512), 385);
        assert_eq!(split_point(513, 300, 512), 300);
        assert_eq!(split_point(513, 256, 512), 256);
        assert_eq!(split_point(513, 255, 512), 256);
        assert_eq!(split_point(513, 0, 512), 256);
        assert_eq!(split_point(9, 8, 8), 7);
    }
}

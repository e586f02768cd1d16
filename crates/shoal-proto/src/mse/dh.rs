//! Diffie-Hellman over MSE's 768-bit prime with generator 2: modular exponentiation
//! over twelve 64-bit limbs in Montgomery form. The private key (160 random bits) comes
//! from the caller; this module holds no randomness.
//!
//! Not constant-time: MSE is obfuscation against traffic shaping, not secrecy, and its
//! 768-bit group and RC4 would not protect anything anyway.

/// Length of a public key and of the shared secret on the wire (big-endian, padded).
pub const KEY_LEN: usize = 96;
/// Length of a private key: 160 bits.
pub const PRIVATE_LEN: usize = 20;

const LIMBS: usize = 12;
type Num = [u64; LIMBS];

/// The MSE prime, least significant limb first.
const P: Num = [
    0x0000000000090563,
    0xf44c42e9a63a3621,
    0xe485b576625e7ec6,
    0x4fe1356d6d51c245,
    0x302b0a6df25f1437,
    0xef9519b3cd3a431b,
    0x514a08798e3404dd,
    0x020bbea63b139b22,
    0x29024e088a67cc74,
    0xc4c6628b80dc1cd1,
    0xc90fdaa22168c234,
    0xffffffffffffffff,
];

/// Our public key `2^private mod P`, 96 bytes big-endian.
pub fn public_key(private: &[u8; PRIVATE_LEN]) -> [u8; KEY_LEN] {
    let mut two = [0u8; KEY_LEN];
    two[KEY_LEN - 1] = 2;
    mod_pow(&two, private)
}

/// The shared secret `their_public^private mod P`, 96 bytes big-endian.
pub fn shared_secret(private: &[u8; PRIVATE_LEN], their_public: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    mod_pow(their_public, private)
}

/// `base^exp mod P`; `base` is reduced first (a peer may send a value above P).
pub fn mod_pow(base: &[u8; KEY_LEN], exp: &[u8]) -> [u8; KEY_LEN] {
    let mut b = from_bytes(base);
    if !less_than(&b, &P) {
        sub_assign(&mut b, &P);
    }
    let n0 = n0_inv();
    let r2 = r_squared();
    let mut one = [0u64; LIMBS];
    one[0] = 1;
    let base_m = mont_mul(&b, &r2, n0);
    let mut acc = mont_mul(&one, &r2, n0);
    for byte in exp {
        for bit in (0..8).rev() {
            acc = mont_mul(&acc, &acc, n0);
            if byte >> bit & 1 == 1 {
                acc = mont_mul(&acc, &base_m, n0);
            }
        }
    }
    to_bytes(&mont_mul(&acc, &one, n0))
}

fn from_bytes(b: &[u8; KEY_LEN]) -> Num {
    let mut n = [0u64; LIMBS];
    for (k, limb) in n.iter_mut().enumerate() {
        let end = KEY_LEN - 8 * k;
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[end - 8..end]);
        *limb = u64::from_be_bytes(w);
    }
    n
}

fn to_bytes(n: &Num) -> [u8; KEY_LEN] {
    let mut b = [0u8; KEY_LEN];
    for (k, limb) in n.iter().enumerate() {
        let end = KEY_LEN - 8 * k;
        b[end - 8..end].copy_from_slice(&limb.to_be_bytes());
    }
    b
}

fn less_than(a: &Num, b: &Num) -> bool {
    for k in (0..LIMBS).rev() {
        if a[k] != b[k] {
            return a[k] < b[k];
        }
    }
    false
}

/// `a -= b`, returning the borrow.
fn sub_assign(a: &mut Num, b: &Num) -> bool {
    let mut borrow = false;
    for k in 0..LIMBS {
        let (d, b1) = a[k].overflowing_sub(b[k]);
        let (d, b2) = d.overflowing_sub(borrow as u64);
        a[k] = d;
        borrow = b1 || b2;
    }
    borrow
}

/// `-P^-1 mod 2^64` (P is odd), by Newton's iteration: each step doubles the bits.
fn n0_inv() -> u64 {
    let p0 = P[0];
    let mut inv: u64 = 1;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(p0.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

/// `R^2 mod P` with `R = 2^768`, by doubling 1 mod P 1536 times.
fn r_squared() -> Num {
    let mut x = [0u64; LIMBS];
    x[0] = 1;
    for _ in 0..2 * 64 * LIMBS {
        let mut carry = 0u64;
        for limb in x.iter_mut() {
            let next = *limb >> 63;
            *limb = *limb << 1 | carry;
            carry = next;
        }
        if carry == 1 || !less_than(&x, &P) {
            sub_assign(&mut x, &P);
        }
    }
    x
}

/// Montgomery product `a * b / R mod P` for `a, b < P` (coarsely integrated operand
/// scanning).
fn mont_mul(a: &Num, b: &Num, n0: u64) -> Num {
    let mut t = [0u64; LIMBS + 2];
    for &ai in a {
        let mut carry = 0u128;
        for j in 0..LIMBS {
            let v = t[j] as u128 + ai as u128 * b[j] as u128 + carry;
            t[j] = v as u64;
            carry = v >> 64;
        }
        let v = t[LIMBS] as u128 + carry;
        t[LIMBS] = v as u64;
        t[LIMBS + 1] = (v >> 64) as u64;

        let m = t[0].wrapping_mul(n0);
        let v = t[0] as u128 + m as u128 * P[0] as u128;
        let mut carry = v >> 64;
        for j in 1..LIMBS {
            let v = t[j] as u128 + m as u128 * P[j] as u128 + carry;
            t[j - 1] = v as u64;
            carry = v >> 64;
        }
        let v = t[LIMBS] as u128 + carry;
        t[LIMBS - 1] = v as u64;
        t[LIMBS] = t[LIMBS + 1] + (v >> 64) as u64;
    }
    let mut r = [0u64; LIMBS];
    r.copy_from_slice(&t[..LIMBS]);
    if t[LIMBS] != 0 || !less_than(&r, &P) {
        sub_assign(&mut r, &P);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigUint;
    use proptest::prelude::*;

    fn big_p() -> BigUint {
        BigUint::from_bytes_be(&to_bytes(&P))
    }

    fn padded(n: &BigUint) -> [u8; KEY_LEN] {
        let b = n.to_bytes_be();
        let mut out = [0u8; KEY_LEN];
        out[KEY_LEN - b.len()..].copy_from_slice(&b);
        out
    }

    #[test]
    fn prime_round_trips_and_constants_hold() {
        assert_eq!(from_bytes(&to_bytes(&P)), P);
        assert_eq!(P[0].wrapping_mul(n0_inv()), u64::MAX); // P * -P^-1 = -1
        let r2 = BigUint::from_bytes_be(&to_bytes(&r_squared()));
        assert_eq!(r2, (BigUint::from(1u8) << 1536) % big_p());
    }

    #[test]
    fn edge_exponents_and_bases() {
        let mut two = [0u8; KEY_LEN];
        two[KEY_LEN - 1] = 2;
        assert_eq!(public_key(&[0; 20]), padded(&BigUint::from(1u8)));
        let mut one_exp = [0u8; 20];
        one_exp[19] = 1;
        assert_eq!(public_key(&one_exp), two);
        // A base of P (not reduced by the sender) is 0; all-ones is reduced first.
        assert_eq!(mod_pow(&to_bytes(&P), &one_exp), [0u8; KEY_LEN]);
        let ones = [0xffu8; KEY_LEN];
        let expect = BigUint::from_bytes_be(&ones).modpow(&BigUint::from(5u8), &big_p());
        assert_eq!(mod_pow(&ones, &[5]), padded(&expect));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Our exponentiation agrees with an independent bignum on random inputs.
        #[test]
        fn matches_num_bigint(base in prop::array::uniform32(any::<u8>()),
                              hi in prop::collection::vec(any::<u8>(), KEY_LEN - 32),
                              exp in prop::array::uniform20(any::<u8>())) {
            let mut b = [0u8; KEY_LEN];
            b[..KEY_LEN - 32].copy_from_slice(&hi);
            b[KEY_LEN - 32..].copy_from_slice(&base);
            let expect = BigUint::from_bytes_be(&b)
                .modpow(&BigUint::from_bytes_be(&exp), &big_p());
            prop_assert_eq!(mod_pow(&b, &exp), padded(&expect));
        }

        /// Both sides derive the same secret.
        #[test]
        fn both_sides_agree(xa in prop::array::uniform20(any::<u8>()),
                            xb in prop::array::uniform20(any::<u8>())) {
            let (ya, yb) = (public_key(&xa), public_key(&xb));
            prop_assert_eq!(shared_secret(&xa, &yb), shared_secret(&xb, &ya));
        }
    }
}

"""CKKS parameters shared by the partner client and Suite.

poly_modulus_degree 8192 with a 200-bit coefficient modulus (60, 40, 40, 60) is within the
HomomorphicEncryption.org standard's bound for 128-bit classical security at N=8192 (218 bits).
The scale 2**40 keeps about 40 bits of precision after one plaintext multiplication, so a linear
score over a few dozen features is exact to about 1e-6. One ciphertext holds up to N/2 = 4096
features.
"""

POLY_MODULUS_DEGREE = 8192
COEFF_MOD_BIT_SIZES = (60, 40, 40, 60)
GLOBAL_SCALE_BITS = 40
SECURITY_BITS = 128
MAX_FEATURES = POLY_MODULUS_DEGREE // 2

"""Homomorphic-encryption scoring (CKKS, TenSEAL): a partner bank sends an encrypted feature vector,
Suite returns the encrypted linear screening score, and only the partner can decrypt it.

client.py is the partner's side (keys, encryption, decryption); scoring.py is Suite's side (the
public context and the linear model; it never holds a secret key). See docs/finance-he.md.
"""

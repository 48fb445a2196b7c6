"""Tests of the Graph client side: retry policy, pacer, client and token providers."""

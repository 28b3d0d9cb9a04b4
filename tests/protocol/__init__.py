"""Protocol layer tests: codec units, parity with independent implementations, fuzzing."""

"""Files people read: the nightly batch summary now; monthly rankings and review pages later."""

"""HTTP views of the accounts app: sign-in/out, user admin, audit review. Thin: one service/selector call each."""

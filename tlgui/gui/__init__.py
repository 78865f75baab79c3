"""The desktop application (Qt). It presents the core; it computes nothing itself."""

//! Azure Resource Manager client.

"""Benefits: what members get at alliance merchants, voucher redemption at the point of sale, price integrity."""

"""Payment analytics: GetPaymentStats and GetRevenueSeries."""

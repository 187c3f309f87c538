"""CRM: accounts and contacts (deals, leads, activities and tickets to come)."""

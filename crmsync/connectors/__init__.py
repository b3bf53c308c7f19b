"""One module per CRM, on its official client library; they map CRM shapes to and from `model`."""

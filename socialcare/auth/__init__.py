"""What a login needs beside the people themselves (socialcare.people): password hashing and
secrets, roles and what each may do."""

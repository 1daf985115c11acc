"""The MCP (Model Context Protocol) server: FODC's proxy API as tools for an AI assistant (`fodc mcp`)."""

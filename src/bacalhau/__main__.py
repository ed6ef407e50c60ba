from bacalhau.cli.main import main

main()

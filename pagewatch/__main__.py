from pagewatch.cli import main

main()
